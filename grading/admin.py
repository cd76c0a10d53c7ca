from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from grading.models import ModuleProgress


@admin.register(ModuleProgress)
class ModuleProgressAdmin(admin.ModelAdmin):
    list_display = ["learner", "module", "status", "best_score", "completed_at"]
    list_filter = ["status", "module__course"]
    search_fields = ["learner__username", "module__slug"]

    # Progress is evidence for HR: it changes only through the grading services.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

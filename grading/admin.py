from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from grading.models import Grade, ModuleProgress


class ReadOnlyAdmin(admin.ModelAdmin):
    """Progress and grades are evidence for HR: they change only through the grading services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ModuleProgress)
class ModuleProgressAdmin(ReadOnlyAdmin):
    list_display = ["learner", "module", "status", "best_score", "completed_at"]
    list_filter = ["status", "module__course"]
    search_fields = ["learner__username", "module__slug"]


@admin.register(Grade)
class GradeAdmin(ReadOnlyAdmin):
    list_display = [
        "submission",
        "metric",
        "metric_value",
        "score",
        "passed",
        "graded_at",
        "regraded_at",
    ]
    list_filter = ["passed", "submission__lab"]

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "LLM Academy administration"
admin.site.site_title = "LLM Academy admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("reports/", include("grading.reports.urls")),
    path("", include("labs.urls")),
    path("", include("courses.urls")),
]

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

import academy.admin  # noqa: F401  (registers every model: the admin is composed there)
from academy.views import RateLimitedLoginView, favicon

admin.site.site_header = "LLM Academy administration"
admin.site.site_title = "LLM Academy admin"

urlpatterns = [
    # Browsers ask for /favicon.ico whatever the page links: answer it, not a logged 404.
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    # Before django.contrib.auth.urls, whose plain login view it replaces.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("reports/", include("grading.reports.urls")),
    path("", include("web.urls.labs")),
    path("", include("web.urls.courses")),
]

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

import academy.admin  # noqa: F401  (registers every model: the admin is composed there)
from academy.locale import language_set
from academy.sso import SignInCallbackView, SignInStartView
from academy.views import (
    RateLimitedLoginView,
    RateLimitedPasswordResetView,
    admin_login,
    favicon,
    sign_out,
)

admin.site.site_header = _("LLM Academy administration")
admin.site.site_title = _("LLM Academy admin")

urlpatterns = [
    # Before admin.site.urls, whose login view it wraps (a 429 once its form refuses).
    path("admin/login/", admin_login),
    # Browsers ask for /favicon.ico whatever the page links: answer it, not a logged 404.
    path("favicon.ico", favicon),
    # The header's language switcher posts here (Django's set_language's name).
    path("i18n/setlang/", language_set, name="set_language"),
    path("admin/", admin.site.urls),
    # Before django.contrib.auth.urls, whose plain views these replace.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", sign_out, name="logout"),
    # Single sign-on; both answer 404 unless ACADEMY_OIDC_ISSUER is set. The names are
    # mozilla-django-oidc's, which it reverses.
    path("oidc/authenticate/", SignInStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", SignInCallbackView.as_view(), name="oidc_authentication_callback"),
    path(
        "accounts/password_reset/",
        RateLimitedPasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("reports/", include("grading.reports.urls")),
    path("", include("web.urls.labs")),
    path("", include("web.urls.courses")),
]

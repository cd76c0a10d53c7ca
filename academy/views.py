"""The sign-in, admin sign-in and password-reset views: Django's, with the limits of
academy.signin and a 429 when a limit refuses."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.views import LoginView, PasswordResetView
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static

from academy.signin import (
    RateLimitedAuthenticationForm,
    RateLimitedPasswordResetForm,
    is_throttled,
)


def _throttled_message(form: Form) -> str:
    return " ".join(str(message) for message in form.non_field_errors())


class RateLimitedLoginView(LoginView):
    """Django's sign-in with RateLimitedAuthenticationForm; a refusal says when to retry."""

    authentication_form = RateLimitedAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        if not is_throttled(form):
            return super().form_invalid(form)
        context = self.get_context_data(form=form, throttled=_throttled_message(form))
        return self.render_to_response(context, status=429)


class RateLimitedPasswordResetView(PasswordResetView):
    form_class = RateLimitedPasswordResetForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form: PasswordResetForm) -> HttpResponse:
        response = super().form_invalid(form)
        if is_throttled(form):
            response.status_code = 429
        return response


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own sign-in page (its form counts failures); 429 once refused."""
    response = admin.site.login(request)
    context = getattr(response, "context_data", None) or {}
    if is_throttled(context.get("form")):
        response.status_code = 429
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request, not at import: the worker imports the URLconf without the
    # collected static manifest a hashed name needs.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))

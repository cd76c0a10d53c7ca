"""The sign-in, sign-out, admin sign-in and password-reset views: Django's, with the limits
of academy.signin and a 429 when a limit refuses; the sign-in page offers single sign-on
where it is configured (academy.sso)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, auth
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.views import LoginView, PasswordResetView
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_POST

from academy import sso
from academy.signin import (
    RateLimitedAuthenticationForm,
    RateLimitedPasswordResetForm,
    is_passwords_off,
    is_throttled,
)


def _throttled_message(form: Form) -> str:
    return " ".join(str(message) for message in form.non_field_errors())


class RateLimitedLoginView(LoginView):
    """Django's sign-in with RateLimitedAuthenticationForm; a refusal says when to retry."""

    authentication_form = RateLimitedAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_provider"] = sso.provider_name() if sso.sso_enabled() else None
        # With passwords off the page offers single sign-on only; the break-glass accounts
        # open the form with ?password.
        context["password_form"] = (
            settings.ACADEMY_LOCAL_LOGIN
            or "password" in self.request.GET
            or self.request.method == "POST"
        )
        return context

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        if is_passwords_off(form):
            context = self.get_context_data(form=form, refused=_throttled_message(form))
            return self.render_to_response(context, status=403)
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


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Ends our session, then the provider's where it has one (RP-initiated logout)."""
    provider_logout = sso.provider_logout_url(request)  # needs the session: read it first
    auth.logout(request)
    return redirect(provider_logout or settings.LOGOUT_REDIRECT_URL)


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

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static

from academy.ratelimit import RateLimit, wait_phrase

# Failed sign-ins: per account, whichever address they come from, and per client address.
LOGIN_FAILURES_PER_ACCOUNT = RateLimit("login-account", limit=10, window_seconds=15 * 60)
LOGIN_FAILURES_PER_ADDRESS = RateLimit("login-address", limit=100, window_seconds=15 * 60)


class RateLimitedLoginView(LoginView):
    """Django's sign-in, refusing further tries once an account or address failed too often."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        wait = LOGIN_FAILURES_PER_ACCOUNT.retry_after(self._account()) or (
            LOGIN_FAILURES_PER_ADDRESS.retry_after(self._address())
        )
        if not wait:
            return super().post(request, *args, **kwargs)
        context = self.get_context_data(form=self.get_form())
        context["throttled"] = (
            f"Too many failed sign-ins. Try again in {wait_phrase(wait)}, "
            "or ask your administrator to reset your password."
        )
        return self.render_to_response(context, status=429)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        LOGIN_FAILURES_PER_ACCOUNT.hit(self._account())
        LOGIN_FAILURES_PER_ADDRESS.hit(self._address())
        return super().form_invalid(form)

    def _account(self) -> str:
        return self.request.POST.get("username", "").strip().lower()

    def _address(self) -> str:
        return self.request.META.get("REMOTE_ADDR", "")


def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request, not at import: the worker imports the URLconf without the
    # collected static manifest a hashed name needs.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))

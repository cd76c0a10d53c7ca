from __future__ import annotations

from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from academy.ratelimit import RateLimit, wait_phrase

# Failed sign-ins: per account, whichever address they come from, and per client address.
LOGIN_FAILURES_PER_ACCOUNT = RateLimit("login-account", limit=10, window_seconds=15 * 60)
LOGIN_FAILURES_PER_ADDRESS = RateLimit("login-address", limit=100, window_seconds=15 * 60)


class RateLimitedLoginView(LoginView):
    """Django's sign-in, refusing further tries once an account or address failed too often."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        account = request.POST.get("username", "").strip().lower()
        address = request.META.get("REMOTE_ADDR", "")
        wait = LOGIN_FAILURES_PER_ACCOUNT.retry_after(account) or (
            LOGIN_FAILURES_PER_ADDRESS.retry_after(address)
        )
        if wait:
            form = self.get_form()
            context = self.get_context_data(form=form)
            context["throttled"] = (
                f"Too many failed sign-ins. Try again in {wait_phrase(wait)}, "
                "or ask your administrator to reset your password."
            )
            return self.render_to_response(context, status=429)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:
            LOGIN_FAILURES_PER_ACCOUNT.hit(account)
            LOGIN_FAILURES_PER_ADDRESS.hit(address)
        return response

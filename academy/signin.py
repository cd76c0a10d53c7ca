"""Sign-in and password-reset limits, shared by every form that checks a password.

The limits live in the forms, not in one view, so the learner sign-in, the admin's
`/admin/login/` and the password reset all count the same way. An account is counted
under the name the form signs in with: Django's UsernameField NFKC-normalises it
(full-width `carol` signs in as `carol`), so the count uses the NFKC form, casefolded and
stripped; anything looser gave each spelling of a name its own ten guesses.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _

from academy.ratelimit import RateLimit, wait_phrase

# Failed sign-ins: per account, whichever address they come from, and per client address.
LOGIN_FAILURES_PER_ACCOUNT = RateLimit("login-account", limit=10, window_seconds=15 * 60)
LOGIN_FAILURES_PER_ADDRESS = RateLimit("login-address", limit=100, window_seconds=15 * 60)
# Every reset request sends an e-mail: a few per address an hour, fewer per mailbox.
RESETS_PER_EMAIL = RateLimit("reset-email", limit=3, window_seconds=60 * 60)
RESETS_PER_ADDRESS = RateLimit("reset-address", limit=10, window_seconds=60 * 60)

THROTTLED = "throttled"
PASSWORDS_OFF = "passwords-off"


def identity(value: str) -> str:
    """One key per account however it is spelt: NFKC (as the form signs in), casefolded."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def password_sign_in_allowed(username: str) -> bool:
    """Whether `username` may sign in with a password: anyone, unless ACADEMY_LOCAL_LOGIN is
    off, when only the break-glass accounts may (everyone else uses single sign-on)."""
    if settings.ACADEMY_LOCAL_LOGIN:
        return True
    return identity(username) in {identity(name) for name in settings.ACADEMY_BREAK_GLASS_USERS}


def passwords_off_message() -> str:
    return _(
        "Password sign-in is turned off here. Use the “Sign in with %(provider)s” button instead."
    ) % {"provider": settings.ACADEMY_OIDC_PROVIDER_NAME}


def client_address(request: HttpRequest) -> str:
    """The client's address: from the trusted proxy's header when one is configured.

    Behind a reverse proxy every request's REMOTE_ADDR is the proxy's, so a limit per
    REMOTE_ADDR let one guesser lock everyone out. ACADEMY_CLIENT_ADDRESS_HEADER names the
    header the proxy sets (X-Forwarded-For); the client is the entry that many hops
    (ACADEMY_TRUSTED_PROXY_HOPS) from the right, the one our own proxy appended: entries
    further left were written by the client and prove nothing.
    """
    header = settings.ACADEMY_CLIENT_ADDRESS_HEADER
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if not header:
        return remote
    raw = str(request.META.get("HTTP_" + header.upper().replace("-", "_"), ""))
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    hops = settings.ACADEMY_TRUSTED_PROXY_HOPS
    if len(entries) < hops:
        return remote
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def _refusal(seconds: int, message: str) -> ValidationError:
    """`message` names the wait as %(wait)s."""
    return ValidationError(message % {"wait": wait_phrase(seconds)}, code=THROTTLED)


class RateLimitedAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing further tries once an account or address failed
    too often; a locked account is refused even with the right password."""

    def clean(self) -> dict[str, Any]:
        # Refused by name before any password is checked: the answer tells nothing of it.
        if not password_sign_in_allowed(str(self.data.get("username", ""))):
            raise ValidationError(passwords_off_message(), code=PASSWORDS_OFF)
        account = identity(str(self.data.get("username", "")))
        address = client_address(self.request) if self.request is not None else ""
        wait = LOGIN_FAILURES_PER_ACCOUNT.retry_after(account) or (
            LOGIN_FAILURES_PER_ADDRESS.retry_after(address)
        )
        if wait:
            raise _refusal(
                wait,
                _(
                    "Too many failed sign-ins. Try again in %(wait)s, or ask your administrator "
                    "to reset your password."
                ),
            )
        try:
            return super().clean()
        except ValidationError:
            LOGIN_FAILURES_PER_ACCOUNT.hit(account)
            LOGIN_FAILURES_PER_ADDRESS.hit(address)
            raise


class RateLimitedAdminAuthenticationForm(RateLimitedAuthenticationForm, AdminAuthenticationForm):
    """The admin's sign-in (staff only), counted with the same limits."""


class RateLimitedPasswordResetForm(PasswordResetForm):
    """Each request may send an e-mail: bounded per mailbox and per client address.

    Counted whether or not the address has an account, so the answer tells nothing."""

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"])
        address = client_address(self.request) if self.request is not None else ""
        wait = RESETS_PER_EMAIL.hit(identity(email)) or RESETS_PER_ADDRESS.hit(address)
        if wait:
            raise _refusal(
                wait,
                _(
                    "Too many password reset requests. Try again in %(wait)s, or ask your "
                    "administrator."
                ),
            )
        return email


def is_throttled(form: Any) -> bool:
    return bool(form is not None and form.errors and _has_code(form, THROTTLED))


def is_passwords_off(form: Any) -> bool:
    return bool(form is not None and form.errors and _has_code(form, PASSWORDS_OFF))


def _has_code(form: Any, code: str) -> bool:
    return any(error.code == code for errors in form.errors.as_data().values() for error in errors)

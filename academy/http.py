"""Request types for the type checker: what the middleware and `login_required` guarantee.

At run time every view gets Django's plain `HttpRequest`; these subclasses only tell mypy
what is already true of it, so views pass `request.user` to services that take a signed-in
user without a cast or an ignore at each call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    """A request that went through django-htmx's middleware (every request does)."""

    htmx: HtmxDetails


class SignedInRequest(HtmxRequest):
    """A request that `login_required` let through: its user is signed in, never anonymous."""

    user: User

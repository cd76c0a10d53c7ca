"""Response headers that Django's SecurityMiddleware does not set."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Send the site's Content-Security-Policy on every response that has none.

    Scripts come only from our own static files, so markup that slips into a lesson,
    a lab name or learner code shown on a page cannot run even if a sanitiser missed it.
    """
    policy = settings.ACADEMY_CONTENT_SECURITY_POLICY

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        return response

    return middleware

"""Response headers that Django's SecurityMiddleware does not set, and oversized POSTs."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Send the site's Content-Security-Policy on every response that has none.

    Scripts come only from our own static files, so markup that slips into a lesson,
    a lab name or learner code shown on a page cannot run even if a sanitiser missed it.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        policy = settings.ACADEMY_CONTENT_SECURITY_POLICY  # per request: tests turn on SSO
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        return response

    return middleware


def oversized_post(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A form POST body over DATA_UPLOAD_MAX_MEMORY_SIZE reaches the view as an empty form.

    Left alone, the first read of request.POST (the CSRF check's) raises RequestDataTooBig
    and the client gets Django's bare 400 page, which htmx swapped into the lab's run
    panel. Instead the body is not read: the view sees `request.post_too_large` and
    answers in its own words. The CSRF check still runs, on the X-CSRFToken header that
    htmx sends (a plain form's token was in the refused body: a 403, as for any bad form).
    Runs before CsrfViewMiddleware.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def middleware(request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # Multipart bodies are left to Django: uploaded files do not count against the
        # limit (a 50 MB dataset CSV or course zip must reach its view), only text fields.
        multipart = request.content_type == "multipart/form-data"
        too_large = (
            request.method == "POST" and not multipart and limit is not None and length > limit
        )
        request.post_too_large = too_large  # type: ignore[attr-defined]
        if too_large:
            # What HttpRequest caches after reading a body: an empty form and no files.
            request._post = QueryDict()  # type: ignore[attr-defined]
            request._files = MultiValueDict()  # type: ignore[attr-defined]
        return get_response(request)

    return middleware

"""Learner pages served from the cache until something they show changes.

A course or lesson page costs a dozen queries and a large template; a learner reads it
many times between changes to it. So the rendered page is cached under a key made of
everything it depends on, and a change shows by changing the key, never by deleting
entries (which a second web process, or a Celery worker, could not reach in a
per-process cache):

- the learner and how the page greets them (id, name, staff flags);
- their progress in the course: `Enrollment.progress_version`, bumped inside every
  progress write (grading/services.py), plus the enrollment's id, due and completion
  dates;
- the course content: `Course.updated_at`, touched by every import and admin edit of a
  stage, module or question (`courses.services.course_content_changed`);
- the language the page is in (`get_language()`): a course's translation is another page;
- the browser's CSRF secret, because the page's forms carry tokens made from it: a
  second browser of the same learner gets a page of its own, whose forms work.

The key is read with one query before the view runs, and a page is stored under the key
read *before* it was rendered: a change that lands during the render has already moved
the version on, so a page that might be stale is stored where no one looks again.

Only published courses the learner is enrolled in, plain GETs without pending flash
messages, and pages the view marks with `cacheable_for_learner` are cached. Role
changes (the "Reports" link in the header) reach a cached page within PAGE_SECONDS;
every page behind those links checks the role itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache as cache_for_process
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse
from django.utils import translation

from academy.http import HtmxRequest
from courses.models import Course, Enrollment

PAGE_SECONDS = 600
# Set on responses so an operator (and the tests) can see what the cache did.
HEADER = "X-Academy-Page-Cache"

View = Callable[..., HttpResponse]


def cacheable_for_learner(response: HttpResponse) -> HttpResponse:
    """Mark a rendered learner page as fit for the cache (the view knows, not the wrapper)."""
    response.cacheable_for_learner = True  # type: ignore[attr-defined]
    return response


def page_key(request: HtmxRequest, course_slug: str) -> str | None:
    """The cache key of this request's page, or None where the page must be rendered."""
    user = request.user
    csrf_secret = request.META.get("CSRF_COOKIE")
    if request.method != "GET" or request.htmx or not user.is_authenticated or not csrf_secret:
        return None
    if len(messages.get_messages(request)):  # counting does not mark them shown
        return None
    with connection.cursor() as cursor:
        cursor.execute(_versions_sql(), [user.pk, course_slug, True])
        versions = cursor.fetchone()
    if versions is None:
        return None
    # The path without its query string: the cached pages read none (a lab's `?load=` is
    # never cached), and a learner making up
    # query strings must not be able to fill the cache.
    parts = (
        request.path,
        user.pk,
        user.get_username(),
        user.get_full_name(),
        user.is_staff,
        user.is_superuser,
        translation.get_language(),
        csrf_secret,
        translation.get_language(),
        *versions,
    )
    return "learner-page:" + hashlib.sha256(repr(parts).encode()).hexdigest()


@cache_for_process
def _versions_sql() -> str:
    """The enrollment's and course's versions, in SQL written once: on a cached page this
    is the only query besides the user's, and building it through the ORM on every
    request would cost more than running it. (Both databases return the same values
    each time, which is all a key needs; they need not be Python dates.) The enrollment's
    id is part of it: an enrollment deleted and made again starts at version 0 again."""
    quote = connection.ops.quote_name
    enrollment, course = Enrollment._meta, Course._meta

    def column(meta: Any, name: str) -> str:
        return quote(meta.get_field(name).column)

    # Names from the models' own metadata; the values are parameters.
    return (
        f"SELECT e.{column(enrollment, 'id')}, e.{column(enrollment, 'progress_version')},"  # noqa: S608
        f" e.{column(enrollment, 'due_date')}, e.{column(enrollment, 'completed_at')},"
        f" c.{column(course, 'updated_at')}"
        f" FROM {quote(enrollment.db_table)} e JOIN {quote(course.db_table)} c"
        f" ON c.{column(course, 'id')} = e.{column(enrollment, 'course')}"
        f" WHERE e.{column(enrollment, 'learner')} = %s AND c.{column(course, 'slug')} = %s"
        f" AND c.{column(course, 'is_published')} = %s"
    )


def cached_learner_page(view: View) -> View:
    """Serve the view's page from the cache while its key holds (see the module docstring).

    Wrap inside `login_required`, so an anonymous visitor is redirected before any lookup.
    The view's URL must name the course as `slug` or `course_slug`.
    """

    @wraps(view)
    def wrapper(request: HtmxRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = page_key(request, kwargs.get("course_slug") or kwargs["slug"])
        if key is not None:
            page = caches["pages"].get(key)
            if page is not None:
                response = HttpResponse(page)
                response[HEADER] = "hit"
                return response
        response = view(request, *args, **kwargs)
        if (
            key is not None
            and response.status_code == 200
            and getattr(response, "cacheable_for_learner", False)
        ):
            caches["pages"].set(key, response.content, PAGE_SECONDS)
            response[HEADER] = "miss"
        return response

    return wrapper

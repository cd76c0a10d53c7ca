"""The interface language: which one a request gets, and a signed-in person's choice.

A request gets, in order: the language saved on the signed-in account (copied into the
session when they sign in, so reading it costs no query on each page), the cookie the
header's switcher sets (a visitor who is not signed in), the browser's
Accept-Language, and LANGUAGE_CODE. The switcher posts to `language_set`, Django's
set_language plus the account's saved choice.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import LANGUAGE_QUERY_PARAMETER, set_language

from academy.refusals import Refusal
from courses.selectors import language_preference_of
from courses.services import language_check, language_preference_set

SESSION_KEY = "academy_language"


def _session_language(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    language = session.get(SESSION_KEY) if session is not None else None
    return language if language in dict(settings.LANGUAGES) else None


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's, with the signed-in account's saved language ahead of cookie and browser."""

    def process_request(self, request: HttpRequest) -> None:
        language = _session_language(request)
        if language is None:
            super().process_request(request)
            return
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


def remember_language_at_sign_in(
    sender: Any, request: HttpRequest | None, user: User, **_: Any
) -> None:
    """`user_logged_in` receiver: carry the account's saved language into the new session.

    A receiver rather than a line in the sign-in view because every way in (the form,
    the admin's, single sign-on, the tests' force_login) goes through `auth.login`; it
    copies a setting and decides nothing.
    """
    if request is None or not hasattr(request, "session"):
        return
    language = language_preference_of(user=user)
    if language is not None:
        request.session[SESSION_KEY] = language


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The header's switcher: Django's set_language (cookie, redirect back), and for a
    signed-in person the choice saved on the account and in this session."""
    try:
        language = language_check(request.POST.get(LANGUAGE_QUERY_PARAMETER, ""))
    except Refusal as refusal:
        return HttpResponseBadRequest(refusal.message, content_type="text/plain; charset=utf-8")
    if isinstance(request.user, User):
        language_preference_set(user=request.user, language=language)
        request.session[SESSION_KEY] = language
    return set_language(request)

"""Single sign-on with OpenID Connect, from the button on the sign-in page to the profile.

mozilla-django-oidc runs the authorization-code flow (PKCE, state, nonce, the ID token's
signature against the provider's JWKS); this module adds what it leaves out and what is
ours:

1. the endpoints come from the provider's discovery document, fetched only when someone
   signs in, so a provider that is down never stops a password sign-in or start-up;
2. the ID token's issuer and audience are checked (the library checks neither), and the
   userinfo answer must be about the same subject;
3. every failure becomes a page saying what went wrong and what to do, with nobody signed
   in (`SignInFailed`), instead of the library's bare redirect, 400 or 500;
4. the person is created or updated from the claims (`employee_claims_read`,
   `sso_user_sync`) and enrolled in their department's assigned courses at once.

Settings and their meaning: docs/sso.md.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from academy.auth import AcademyModelBackend
from academy.refusals import Refusal
from courses.models import EmployeeProfile
from courses.services import (
    HR_GROUP,
    INSTRUCTOR_GROUP,
    employee_profile_update,
    user_roles_set,
)
from grading.reports.services import department_assignments_sync

logger = logging.getLogger(__name__)

DISCOVERY_SECONDS = 3600
# Field lengths of EmployeeProfile, Department and User that a claim must fit.
EMPLOYEE_ID_MAX = EmployeeProfile._meta.get_field("employee_id").max_length or 40
DEPARTMENT_MAX = 120


def sso_enabled() -> bool:
    return bool(settings.ACADEMY_OIDC_ISSUER)


def provider_name() -> str:
    return str(settings.ACADEMY_OIDC_PROVIDER_NAME)


class SignInFailed(Refusal):
    """A single sign-on that did not sign anyone in; `message` says why and what to do."""


def _failed(what: str, advice: str, *, status: int = 400) -> SignInFailed:
    return SignInFailed(
        _("%(what)s Nobody has been signed in. %(advice)s") % {"what": what, "advice": advice},
        status=status,
    )


def _provider_down(exc: Exception) -> SignInFailed:
    logger.warning("single sign-on: %s did not answer: %s", settings.ACADEMY_OIDC_ISSUER, exc)
    return _failed(
        _("%(provider)s is not answering, so signing in with it is not possible right now.")
        % {"provider": provider_name()},
        _("Try again in a few minutes; if it stays down, tell IT."),
        status=503,
    )


# --------------------------------------------------------------------------
# The provider's discovery document


def _discovery_key() -> str:
    issuer = str(settings.ACADEMY_OIDC_ISSUER)
    return "sso-discovery:" + hashlib.sha256(issuer.encode()).hexdigest()[:32]


def provider_metadata(*, fresh: bool = False) -> dict[str, Any]:
    """The provider's endpoints (its discovery document), kept an hour in the cache.

    `fresh` fetches it again: the start of each sign-in does, so a provider that is down is
    named on our own page rather than by the browser, and a change of keys or endpoints is
    seen at once. Raises SignInFailed when it cannot be read or names another issuer."""
    if not fresh:
        cached = cache.get(_discovery_key())
        if cached is not None:
            return dict(cached)
    issuer = str(settings.ACADEMY_OIDC_ISSUER)
    try:
        response = requests.get(
            f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT
        )
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise _provider_down(exc) from exc
    if not isinstance(metadata, dict) or metadata.get("issuer", "").rstrip("/") != issuer:
        logger.error("single sign-on: the discovery document of %s names another issuer", issuer)
        raise _failed(
            _("%(provider)s describes itself as another issuer than the one configured.")
            % {"provider": provider_name()},
            _("Tell IT: ACADEMY_OIDC_ISSUER must be the provider's issuer exactly."),
            status=502,
        )
    cache.set(_discovery_key(), metadata, DISCOVERY_SECONDS)
    return metadata


# --------------------------------------------------------------------------
# Claims → the person


@dataclass(frozen=True)
class EmployeeClaims:
    """What a sign-in says about the person. None: the provider did not send that claim."""

    employee_id: str
    username: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    department: str | None
    manager_employee_id: str | None
    roles: frozenset[str] | None


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text_claim(claims: dict[str, Any], path: str, *, limit: int) -> str | None:
    value = _claim(claims, path)
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > limit:
        raise _failed(
            _("The claim '%(path)s' from %(provider)s is longer than %(limit)s characters.")
            % {"path": path, "provider": provider_name(), "limit": limit},
            _("Tell IT: the claim mapping (docs/sso.md) may point at the wrong claim."),
            status=403,
        )
    return text


def _roles(claims: dict[str, Any]) -> frozenset[str] | None:
    value = _claim(claims, settings.ACADEMY_OIDC_CLAIMS["roles"])
    if value is None:
        return None
    values = {str(item) for item in value} if isinstance(value, list) else set(str(value).split())
    wanted = settings.ACADEMY_OIDC_ROLE_VALUES
    groups = {INSTRUCTOR_GROUP: wanted["instructor"], HR_GROUP: wanted["hr"]}
    return frozenset(group for group, role in groups.items() if role in values)


def employee_claims_read(claims: dict[str, Any]) -> EmployeeClaims:
    """The person in `claims`, under the mapping of ACADEMY_OIDC_CLAIMS."""
    mapping = settings.ACADEMY_OIDC_CLAIMS
    employee_id = _text_claim(claims, mapping["employee_id"], limit=EMPLOYEE_ID_MAX)
    if not employee_id:
        raise _failed(
            _(
                "Your %(provider)s account carries no employee id (the claim '%(claim)s'), "
                "so LLM Academy cannot tell who you are."
            )
            % {"provider": provider_name(), "claim": mapping["employee_id"]},
            _("Ask IT to add your employee id to your account, then sign in again."),
            status=403,
        )
    return EmployeeClaims(
        employee_id=employee_id,
        username=_text_claim(claims, mapping["username"], limit=150),
        email=_text_claim(claims, "email", limit=254),
        first_name=_text_claim(claims, "given_name", limit=150),
        last_name=_text_claim(claims, "family_name", limit=150),
        department=_text_claim(claims, mapping["department"], limit=DEPARTMENT_MAX),
        manager_employee_id=_text_claim(claims, mapping["manager"], limit=EMPLOYEE_ID_MAX),
        roles=_roles(claims),
    )


def _new_username(person: EmployeeClaims) -> str:
    for candidate in (person.username, person.employee_id):
        if candidate and not User.objects.filter(username__iexact=candidate).exists():
            return candidate
    raise _failed(
        _("The username '%(username)s' is taken by another account here.")
        % {"username": person.username},
        _("Ask your administrator to rename or link that account."),
        status=403,
    )


@transaction.atomic
def sso_user_sync(*, person: EmployeeClaims) -> User:
    """Create or update the account of `person` (found by employee id) from a sign-in.

    A claim the provider does not send leaves its field as it is. Once the profile is set,
    a newcomer to a department is enrolled in the courses assigned to it."""
    user = User.objects.filter(profile__employee_id=person.employee_id).first()
    if user is None:
        user = User.objects.create_user(username=_new_username(person))
        user.set_unusable_password()
    elif not user.is_active:
        raise _failed(
            _("Your LLM Academy account is deactivated."),
            _("Ask HR or your administrator to reactivate it."),
            status=403,
        )
    for field in ("email", "first_name", "last_name"):
        value = getattr(person, field)
        if value is not None:
            setattr(user, field, value)
    user.save()
    employee_profile_update(
        user=user,
        employee_id=person.employee_id,
        department_name=person.department,
        manager_employee_id=person.manager_employee_id,
    )
    if person.roles is not None:
        user_roles_set(user=user, roles=person.roles)
    department_assignments_sync(user=user)
    return user


# --------------------------------------------------------------------------
# The authentication backend


class AcademyOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with discovered endpoints and the checks it leaves out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: it wants the endpoints, and discovery is only for a
        # callback (a password sign-in runs every backend, and must work with the provider down).
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = User

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if request is None or not {"code", "state"} <= set(request.GET) or not sso_enabled():
            return None
        metadata = provider_metadata()
        self.issuer = str(settings.ACADEMY_OIDC_ISSUER)
        self.OIDC_OP_TOKEN_ENDPOINT = metadata.get("token_endpoint")
        self.OIDC_OP_USER_ENDPOINT = metadata.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = metadata.get("jwks_uri")
        user: User | None = super().authenticate(request, **kwargs)
        return user

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            token: dict[str, Any] = super().get_token(payload)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status >= 500:
                raise _provider_down(exc) from exc
            logger.warning("single sign-on: the token endpoint refused the code: %s", exc)
            raise _failed(
                _(
                    "%(provider)s would not exchange the sign-in code (it may have expired "
                    "or been used already)."
                )
                % {"provider": provider_name()},
                _("Start again from the sign-in page."),
            ) from exc
        except requests.RequestException as exc:
            raise _provider_down(exc) from exc
        if not isinstance(token.get("id_token"), str):
            raise _failed(
                _("%(provider)s answered without an ID token.") % {"provider": provider_name()},
                _("Tell IT: the application must be registered for OpenID Connect."),
                status=502,
            )
        return token

    def retrieve_matching_jwk(self, token: str) -> Any:
        try:
            return super().retrieve_matching_jwk(token)
        except (requests.RequestException, ValueError) as exc:
            raise _provider_down(exc) from exc
        except (SuspiciousOperation, jwt.InvalidTokenError, KeyError) as exc:
            raise self._rejected(
                gettext_lazy("was signed with a key the provider does not publish")
            ) from exc

    def get_payload_data(self, token: str, key: Any) -> dict[str, Any]:
        # The library's own check of the signature (against the JWKS key) and of `exp`.
        try:
            payload: dict[str, Any] = super().get_payload_data(token, key)
        except jwt.ExpiredSignatureError as exc:
            raise _failed(
                _("The ID token from %(provider)s had already expired, so it was not accepted.")
                % {"provider": provider_name()},
                _("Start again; if it keeps happening, tell IT to check this server's clock."),
            ) from exc
        except (SuspiciousOperation, jwt.InvalidTokenError) as exc:
            raise self._rejected(gettext_lazy("failed its signature check")) from exc
        return payload

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = super().verify_token(token, **kwargs)
        except SuspiciousOperation as exc:  # what is left after the signature: the nonce
            raise self._rejected(
                gettext_lazy("was not issued for this sign-in (its nonce differs)")
            ) from exc
        if str(payload.get("iss", "")).rstrip("/") != self.issuer:
            raise self._rejected(gettext_lazy("names another issuer"))
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences or (
            len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID
        ):
            raise self._rejected(gettext_lazy("was issued for another application (its audience)"))
        if "exp" not in payload:
            raise self._rejected(gettext_lazy("has no expiry"))
        return payload

    def _rejected(self, reason: Promise) -> SignInFailed:
        with translation.override("en"):  # the log stays English, whatever the page's language
            logger.warning("single sign-on: an ID token %s", str(reason))
        return _failed(
            _("The ID token from %(provider)s %(reason)s, so it was not accepted.")
            % {"provider": provider_name(), "reason": reason},
            _("Start again; if it keeps happening, tell IT."),
        )

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        # The ID token's claims, and the userinfo endpoint's on top where it has one (Entra
        # ID puts most claims in the token only).
        if not self.OIDC_OP_USER_ENDPOINT:
            return payload
        try:
            userinfo = super().get_userinfo(access_token, id_token, payload)
        except requests.RequestException as exc:
            raise _provider_down(exc) from exc
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
            raise self._rejected(gettext_lazy("and the userinfo answer are about different people"))
        return {**payload, **userinfo}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        self.person = employee_claims_read(claims)
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        # Found by employee id, the directory's key, never by an e-mail address or a
        # username, which the person or another directory may set.
        return User.objects.filter(profile__employee_id=self.person.employee_id)

    def create_user(self, claims: dict[str, Any]) -> User:
        return sso_user_sync(person=self.person)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        return sso_user_sync(person=self.person)

    def get_user(self, user_id: Any) -> Any:
        # The same cheap lookup per request as a password session.
        return AcademyModelBackend().get_user(user_id)


# --------------------------------------------------------------------------
# The views: start, callback, and the provider's sign-out


def sign_in_failed(request: HttpRequest, failure: SignInFailed) -> HttpResponse:
    """Our page for a failed sign-in; whoever was signed in in this browser no longer is."""
    auth.logout(request)
    context = {"message": failure.message, "provider_name": provider_name()}
    return render(request, "registration/sso_failed.html", context, status=failure.status)


class SignInStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider (with state, nonce and a PKCE challenge)."""

    def __init__(self, **kwargs: Any) -> None:
        # Not the library's __init__: the endpoint is discovered in get().
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_metadata(fresh=True)["authorization_endpoint"]
        except SignInFailed as failure:
            return sign_in_failed(request, failure)
        except KeyError:
            return sign_in_failed(request, _provider_down(KeyError("authorization_endpoint")))
        response: HttpResponse = super().get(request)
        return response


class SignInCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: the library's flow, failures as our page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            if "error" in request.GET:
                raise self._provider_said_no(request)
            if request.GET.get("state") not in request.session.get("oidc_states", {}):
                # Used once already, or started in another browser (or by someone else).
                raise _failed(
                    _(
                        "This sign-in answer does not belong to a sign-in started in this "
                        "browser, or it has been used already."
                    ),
                    _("Start again from the sign-in page."),
                )
            response: HttpResponse = super().get(request)
            return response
        except SignInFailed as failure:
            return sign_in_failed(request, failure)

    def _provider_said_no(self, request: HttpRequest) -> SignInFailed:
        states = request.session.get("oidc_states", {})
        if states.pop(request.GET.get("state"), None) is not None:  # never usable again
            request.session.modified = True
        said = request.GET.get("error_description") or request.GET["error"]
        return _failed(
            _("%(provider)s did not sign you in: %(said)s.")
            % {"provider": provider_name(), "said": said[:200]},
            _("Start again from the sign-in page; ask IT if it keeps happening."),
            status=403,
        )

    def login_failure(self) -> HttpResponse:
        return sign_in_failed(
            self.request,
            _failed(
                _("The sign-in with %(provider)s did not complete.")
                % {"provider": provider_name()},
                _("Start again from the sign-in page."),
            ),
        )


def provider_logout_url(request: HttpRequest) -> str | None:
    """The provider's end-session address for this session, or None where there is none.

    Read before our session ends: it needs the ID token kept in it (id_token_hint)."""
    id_token = request.session.get("oidc_id_token")
    if not sso_enabled() or not id_token:
        return None
    try:
        endpoint = provider_metadata().get("end_session_endpoint")
    except SignInFailed:
        return None
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri(
                reverse(settings.LOGOUT_REDIRECT_URL)
            ),
            "client_id": settings.OIDC_RP_CLIENT_ID,
        }
    )
    return f"{endpoint}?{query}"

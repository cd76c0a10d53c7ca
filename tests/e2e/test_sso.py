"""Single sign-on through a real OpenID provider (tests/e2e/idp/provider.mjs) in Chromium.

The ID token is verified by mozilla-django-oidc and PyJWT against the provider's real
JWKS; the bad tokens come from the provider itself (signed with its key where the claim
is about something other than the signature).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import User

from academy.settings import content_security_policy
from courses.models import Department, EmployeeProfile, Enrollment
from grading.models import DepartmentAssignment
from tests.e2e.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    NADIA,
    NOBODY,
    OpenIDProvider,
    provider_start,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_NAME = "Test IdP"


@pytest.fixture(scope="session")
def idp(live_server) -> Iterator[OpenIDProvider]:
    provider = provider_start(rp_url=live_server.url)
    yield provider
    provider.stop()


def sso_on(settings, provider: OpenIDProvider) -> None:
    settings.ACADEMY_OIDC_ISSUER = provider.issuer
    settings.ACADEMY_CONTENT_SECURITY_POLICY = content_security_policy(sso_issuer=provider.issuer)
    settings.ACADEMY_OIDC_PROVIDER_NAME = PROVIDER_NAME
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile employee"
    settings.AUTHENTICATION_BACKENDS = [
        "academy.auth.AcademyModelBackend",
        "academy.sso.AcademyOIDCBackend",
    ]


@pytest.fixture
def sso(settings, idp) -> OpenIDProvider:
    sso_on(settings, idp)
    return idp


@pytest.fixture
def data_science(course) -> Department:
    """Nadia's department, with the course assigned to it, and her manager (E-1000)."""
    from courses.services import roles_sync

    roles_sync()
    department = Department.objects.create(name="Data Science", slug="data-science")
    DepartmentAssignment.objects.create(
        department=department, course=course, due_date=datetime.date(2030, 1, 31)
    )
    manager = UserFactory(username="maria")
    EmployeeProfile.objects.create(user=manager, employee_id="E-1000", department=department)
    return department


def provider_sign_in(page, live_server, credentials: tuple[str, str] = NADIA) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.click(f"text=Sign in with {PROVIDER_NAME}")
    page.wait_for_selector("text=Test provider sign-in")
    page.fill("input[name=username]", credentials[0])
    page.fill("input[name=password]", credentials[1])
    page.click("button[type=submit]")


def nobody_signed_in(page, live_server) -> bool:
    page.goto(f"{live_server.url}/my/")
    return urlparse(page.url).path == "/accounts/login/"


def test_new_employee_signs_in_through_the_provider_lands_on_the_course_and_signs_out(
    live_server, page, screenshot, sso, course, data_science
):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(f"{live_server.url}/courses/{course.slug}/")
    assert urlparse(page.url).path == "/accounts/login/"
    screenshot("sso-01-sign-in-page")
    page.click(f"text=Sign in with {PROVIDER_NAME}")
    page.wait_for_selector("text=Test provider sign-in")
    authorize = parse_qs(urlparse(next(u for u in requests if "/auth?" in u)).query)
    assert authorize["code_challenge_method"] == ["S256"] and authorize["code_challenge"][0]
    assert authorize["nonce"][0] and authorize["state"][0]
    page.fill("input[name=username]", NADIA[0])
    page.fill("input[name=password]", NADIA[1])
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/courses/{course.slug}/")
    assert page.locator("h1", has_text=course.title).count() == 1
    assert page.locator("text=You are not enrolled yet").count() == 0
    assert page.locator(".site-header .who").inner_text() == "Nadia Novak"
    screenshot("sso-02-landed-on-the-course")

    nadia = User.objects.get(profile__employee_id="E-1001")
    assert (nadia.username, nadia.email) == ("nadia", "nadia.novak@example.com")
    assert not nadia.has_usable_password()
    assert nadia.profile.department == data_science
    assert nadia.profile.manager == User.objects.get(username="maria")
    assert set(nadia.groups.values_list("name", flat=True)) == {"Instructor"}
    assert nadia.is_staff and not nadia.is_superuser
    assert Enrollment.objects.get(learner=nadia, course=course).due_date == datetime.date(
        2030, 1, 31
    )

    page.click("text=Sign out")
    page.wait_for_selector("text=Sign out of the test provider?")
    end_session = parse_qs(urlparse(page.url).query)
    assert end_session["id_token_hint"][0].count(".") == 2
    assert end_session["post_logout_redirect_uri"] == [f"{live_server.url}/accounts/login/"]
    page.click("text=Yes, sign me out")
    page.wait_for_url(f"{live_server.url}/accounts/login/")

    # Our session has ended...
    assert nobody_signed_in(page, live_server)
    # ...and the provider's: it asks for the password again instead of signing straight in.
    page.click(f"text=Sign in with {PROVIDER_NAME}")
    page.wait_for_selector("text=Test provider sign-in")
    assert page.locator("input[name=password]").is_visible()


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("tamper", "failed its signature check"),
        ("wrong-audience", "was issued for another application"),
        ("expired", "had already expired"),
    ],
)
def test_a_bad_id_token_is_refused_on_a_clear_page_and_nobody_is_signed_in(
    live_server, page, screenshot, sso, course, data_science, fault, says
):
    sso.set_fault(fault)
    provider_sign_in(page, live_server)

    page.wait_for_selector("[data-sso-failure]")
    assert urlparse(page.url).path == "/oidc/callback/"
    message = page.inner_text("[data-sso-failure] [role=alert]")
    assert f"The ID token from {PROVIDER_NAME} {says}" in message
    assert "Nobody has been signed in" in message
    assert page.locator("text=Back to the sign-in page").is_visible()
    assert page.locator(".site-header .brand").is_visible()  # our own page, our own look
    screenshot(f"sso-03-refused-{fault}")
    assert nobody_signed_in(page, live_server)
    assert not EmployeeProfile.objects.filter(employee_id="E-1001").exists()


def test_a_replayed_callback_is_refused_and_signs_nobody_in(
    live_server, page, browser, screenshot, sso, course, data_science
):
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/oidc/callback/" in r.url else None)
    provider_sign_in(page, live_server)
    page.wait_for_url(f"{live_server.url}/")
    callback = callbacks[0]

    response = page.goto(callback)
    assert response is not None and response.status == 400
    assert "it has been used already" in page.inner_text("[data-sso-failure] [role=alert]")
    screenshot("sso-04-replayed-callback")
    assert nobody_signed_in(page, live_server)

    # The same answer carried to another browser signs nobody in there either.
    other = browser.new_context()
    try:
        stranger = other.new_page()
        response = stranger.goto(callback)
        assert response is not None and response.status == 400
        assert stranger.locator("[data-sso-failure]").count() == 1
        assert nobody_signed_in(stranger, live_server)
    finally:
        other.close()


def test_a_provider_that_is_down_gets_a_clear_page(live_server, page, screenshot, settings, course):
    provider = provider_start(rp_url=live_server.url)
    sso_on(settings, provider)
    provider.stop()

    page.goto(f"{live_server.url}/accounts/login/")
    with page.expect_response("**/oidc/authenticate/") as answer:
        page.click(f"text=Sign in with {PROVIDER_NAME}")
    assert answer.value.status == 503
    message = page.inner_text("[data-sso-failure] [role=alert]")
    assert (
        f"{PROVIDER_NAME} is not answering" in message and "Try again in a few minutes" in message
    )
    screenshot("sso-05-provider-down")
    assert nobody_signed_in(page, live_server)


def test_a_provider_that_goes_down_before_the_code_is_exchanged_gets_a_clear_page(
    live_server, page, settings, course, data_science
):
    provider = provider_start(rp_url=live_server.url)
    sso_on(settings, provider)
    provider.set_fault("down")  # it exits when the academy comes to exchange the code
    try:
        provider_sign_in(page, live_server)
        page.wait_for_selector("[data-sso-failure]")
    finally:
        provider.stop()
    assert provider.process.returncode == 0
    assert f"{PROVIDER_NAME} is not answering" in page.inner_text("[data-sso-failure]")
    assert nobody_signed_in(page, live_server)
    assert not EmployeeProfile.objects.filter(employee_id="E-1001").exists()


def test_an_account_without_an_employee_id_is_refused_with_what_to_do(
    live_server, page, sso, course
):
    provider_sign_in(page, live_server, NOBODY)

    page.wait_for_selector("[data-sso-failure]")
    message = page.inner_text("[data-sso-failure] [role=alert]")
    assert "carries no employee id" in message and "Ask IT" in message
    assert nobody_signed_in(page, live_server)
    assert not User.objects.filter(email="nobody@example.com").exists()

"""Single sign-on's rules that need no provider: claims → the person, and passwords turned
off for all but the break-glass accounts. The flow itself: tests/e2e/test_sso.py."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import User

from academy.sso import SignInFailed, employee_claims_read, sso_user_sync
from courses.models import Department, EmployeeProfile, Enrollment
from courses.services import roles_sync
from grading.models import DepartmentAssignment
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CLAIMS = {
    "sub": "abc",
    "preferred_username": "nadia",
    "email": "nadia@example.com",
    "given_name": "Nadia",
    "family_name": "Novak",
    "employee_id": "E-1001",
    "department": "Data Science",
    "manager_id": "E-1000",
    "roles": ["Instructor"],
}


def sign_in(claims: dict) -> User:
    return sso_user_sync(person=employee_claims_read(claims))


def test_a_new_employee_gets_an_account_profile_department_manager_and_role(course):
    roles_sync()
    manager = UserFactory(username="maria")
    EmployeeProfile.objects.create(user=manager, employee_id="E-1000")

    user = sign_in(CLAIMS)

    assert (user.username, user.email, user.get_full_name()) == (
        "nadia",
        "nadia@example.com",
        "Nadia Novak",
    )
    assert not user.has_usable_password()
    department = Department.objects.get(name="Data Science")  # created: it did not exist
    assert department.slug == "data-science"
    assert user.profile.department == department and user.profile.manager == manager
    assert list(user.groups.values_list("name", flat=True)) == ["Instructor"]
    assert user.is_staff


def test_a_newcomer_to_an_assigned_department_is_enrolled_at_once(course):
    department = Department.objects.create(name="Data Science", slug="data-science")
    DepartmentAssignment.objects.create(
        department=department, course=course, due_date=datetime.date(2030, 6, 1)
    )

    user = sign_in(CLAIMS)

    assert Enrollment.objects.get(learner=user, course=course).due_date == datetime.date(2030, 6, 1)


def test_the_next_sign_in_updates_the_same_account_and_leaves_unsent_claims_alone():
    first = sign_in(CLAIMS)
    moved = {**CLAIMS, "department": "Finance", "roles": [], "email": "n.novak@example.com"}
    del moved["manager_id"], moved["given_name"]

    again = sign_in(moved)

    assert again.pk == first.pk and User.objects.count() == 1
    again.refresh_from_db()
    assert again.profile.department.name == "Finance"
    assert again.email == "n.novak@example.com" and again.first_name == "Nadia"
    assert not again.groups.exists() and not again.is_staff  # the role was taken away


def test_an_existing_directory_entry_is_linked_by_employee_id_not_by_username():
    directory = UserFactory(username="n.novak")
    EmployeeProfile.objects.create(user=directory, employee_id="E-1001")
    UserFactory(username="nadia")  # someone else holds the provider's username here

    user = sign_in(CLAIMS)

    assert user.pk == directory.pk and user.username == "n.novak"


def test_a_new_account_whose_username_is_taken_takes_its_employee_id():
    UserFactory(username="nadia")

    assert sign_in(CLAIMS).username == "E-1001"


def test_the_claim_mapping_follows_the_settings(settings):
    settings.ACADEMY_OIDC_CLAIMS = {
        **settings.ACADEMY_OIDC_CLAIMS,
        "employee_id": "extension_EmployeeId",
        "roles": "realm_access.roles",
    }
    settings.ACADEMY_OIDC_ROLE_VALUES = {"instructor": "academy-teacher", "hr": "academy-hr"}
    claims = {
        "extension_EmployeeId": "E-77",
        "realm_access": {"roles": ["academy-hr", "offline_access"]},
    }

    person = employee_claims_read(claims)

    assert person.employee_id == "E-77" and person.roles == frozenset({"HR"})
    assert person.department is None and person.manager_employee_id is None


def test_a_sign_in_without_an_employee_id_is_refused_with_what_to_do():
    with pytest.raises(SignInFailed) as refused:
        employee_claims_read({"sub": "abc", "email": "x@example.com"})

    assert refused.value.status == 403
    assert "carries no employee id (the claim 'employee_id')" in refused.value.message
    assert "Ask IT" in refused.value.message


def test_a_deactivated_account_is_refused():
    user = sign_in(CLAIMS)
    user.is_active = False
    user.save()

    with pytest.raises(SignInFailed, match="deactivated"):
        sign_in(CLAIMS)


def test_an_overlong_claim_is_refused_rather_than_cut():
    with pytest.raises(SignInFailed, match="longer than 120 characters"):
        employee_claims_read({**CLAIMS, "department": "x" * 121})


# --------------------------------------------------------------------------
# Passwords off


@pytest.fixture
def sso_configured(settings):
    settings.ACADEMY_OIDC_ISSUER = "http://127.0.0.1:9"  # never contacted by these tests
    settings.ACADEMY_OIDC_PROVIDER_NAME = "Contoso ID"


@pytest.fixture
def passwords_off(settings, sso_configured):
    settings.ACADEMY_LOCAL_LOGIN = False
    settings.ACADEMY_BREAK_GLASS_USERS = ["root"]


def test_with_passwords_off_the_sign_in_page_offers_only_single_sign_on(client, passwords_off):
    page = client.get("/accounts/login/?next=/my/").content.decode()

    assert "Sign in with Contoso ID" in page
    assert 'href="/oidc/authenticate/?next=/my/"' in page
    assert 'name="password"' not in page and "Forgotten your password" not in page


def test_with_passwords_off_a_password_is_refused_with_a_clear_message(client, passwords_off):
    UserFactory(username="lee", password="right-password")

    response = client.post("/accounts/login/", {"username": "lee", "password": "right-password"})

    assert response.status_code == 403
    assert "Password sign-in is turned off here" in response.content.decode()
    assert "Sign in with Contoso ID" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_with_passwords_off_the_admin_sign_in_refuses_too(client, passwords_off):
    UserFactory(username="ada", password="right-password", is_staff=True, is_superuser=True)

    response = client.post("/admin/login/", {"username": "ada", "password": "right-password"})

    assert "Password sign-in is turned off here" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_with_passwords_off_the_break_glass_account_still_signs_in(client, passwords_off):
    UserFactory(username="root", password="right-password", is_staff=True, is_superuser=True)

    assert 'name="password"' in client.get("/accounts/login/?password").content.decode()
    response = client.post("/accounts/login/", {"username": "root", "password": "right-password"})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(username="root").pk)


def test_with_sso_off_its_addresses_are_not_found(client):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert "Sign in with" not in client.get("/accounts/login/").content.decode()


def test_a_provider_that_says_no_gets_our_page_with_its_reason(client, sso_configured):
    response = client.get(
        "/oidc/callback/?error=access_denied&error_description=End-User+aborted&state=abc"
    )

    assert response.status_code == 403
    page = response.content.decode()
    assert "Contoso ID did not sign you in: End-User aborted." in page
    assert "Back to the sign-in page" in page


def test_a_callback_for_no_sign_in_started_here_is_refused_without_asking_the_provider(
    client, sso_configured, learner
):
    client.force_login(learner)

    response = client.get("/oidc/callback/?code=stolen&state=not-ours")

    assert response.status_code == 400
    assert "does not belong to a sign-in started in this browser" in response.content.decode()
    assert "_auth_user_id" not in client.session  # a failed sign-in leaves nobody signed in

"""The role matrix: who reaches the HR pages, exports and the JSON API (403 for the others)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from grading.models import CourseStaff
from grading.reports.services import api_token_create, api_token_revoke
from tests.grading.reports_support import build_org


@pytest.fixture
def org(course):
    return build_org(course)


@pytest.fixture
def teaching_instructor(instructor, course):
    CourseStaff.objects.create(course=course, user=instructor)
    return instructor


HR_ONLY = [
    "reports:export-csv",
    "reports:export-json",
    "reports:assign",
    "reports:employee-import",
]


def test_anonymous_visitors_are_sent_to_sign_in_or_get_401_from_the_api(client, db):
    assert client.get(reverse("reports:report")).status_code == 302
    assert client.get(reverse("reports:export-csv")).status_code == 302
    response = client.get(reverse("reports:export-json"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("name", ["reports:report", *HR_ONLY])
def test_a_learner_gets_403_on_every_hr_page(client, learner, name):
    client.force_login(learner)
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", HR_ONLY)
def test_an_instructor_gets_403_on_exports_the_json_api_and_assigning(client, instructor, name):
    client.force_login(instructor)
    assert client.get(reverse(name)).status_code == 403


def test_an_instructor_sees_only_the_courses_they_teach(client, org, teaching_instructor):
    client.force_login(teaching_instructor)
    response = client.get(reverse("reports:report"))
    assert response.status_code == 200
    courses = {row.course_slug for row, _ in response.context["table"]}
    assert courses == {"demo-course"}
    assert b"Download CSV" not in response.content
    # Asking for another course by name is refused as an unknown course, not shown.
    response = client.get(reverse("reports:report"), {"course": "other-course"})
    assert response.status_code == 400
    assert "not one of yours" in response.content.decode()


def test_an_instructor_who_teaches_nothing_sees_an_empty_report(client, org, instructor):
    client.force_login(instructor)
    response = client.get(reverse("reports:report"))
    assert response.status_code == 200
    assert response.context["summary"].assigned == 0


def test_a_learner_may_read_their_own_transcript_but_not_anyone_elses(client, org):
    client.force_login(org.started)
    assert client.get(reverse("reports:transcript", args=[org.started.pk])).status_code == 200
    assert client.get(reverse("reports:transcript", args=[org.done.pk])).status_code == 403


def test_an_instructor_cannot_read_a_learners_transcript(client, org, teaching_instructor):
    client.force_login(teaching_instructor)
    assert client.get(reverse("reports:transcript", args=[org.done.pk])).status_code == 403


def test_hr_reaches_every_page(client, org, hr):
    client.force_login(hr)
    for name in ["reports:report", *HR_ONLY]:
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get(reverse("reports:transcript", args=[org.done.pk])).status_code == 200


def _bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_an_hr_token_reads_the_json_and_csv_without_a_session(client, org, hr):
    _, secret = api_token_create(user=hr, name="HRIS")
    response = client.get(reverse("reports:export-json"), **_bearer(secret))
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert b'"employee_id": "E-101"' in data
    assert client.get(reverse("reports:export-csv"), **_bearer(secret)).status_code == 200


@pytest.mark.parametrize("role", ["learner", "instructor"])
def test_a_token_sees_only_what_its_owner_may_see(client, org, role, request):
    owner = request.getfixturevalue(role)
    _, secret = api_token_create(user=owner, name="mine")
    assert client.get(reverse("reports:export-json"), **_bearer(secret)).status_code == 403
    assert client.get(reverse("reports:export-csv"), **_bearer(secret)).status_code == 403


def test_a_token_stops_working_when_its_owner_leaves_hr(client, org, hr):
    _, secret = api_token_create(user=hr, name="HRIS")
    hr.groups.clear()
    assert client.get(reverse("reports:export-json"), **_bearer(secret)).status_code == 403


def test_a_revoked_or_made_up_token_is_refused_with_401(client, org, hr):
    token, secret = api_token_create(user=hr, name="HRIS")
    api_token_revoke(token=token)
    response = client.get(reverse("reports:export-json"), **_bearer(secret))
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]
    assert client.get(reverse("reports:export-json"), **_bearer("acr_nope")).status_code == 401
    response = client.get(reverse("reports:export-json"), HTTP_AUTHORIZATION="Basic abc")
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


def test_a_token_does_not_open_the_html_pages(client, org, hr):
    _, secret = api_token_create(user=hr, name="HRIS")
    assert client.get(reverse("reports:report"), **_bearer(secret)).status_code == 302


def test_the_reports_link_shows_for_hr_and_instructors_only(client, org, hr, learner):
    client.force_login(learner)
    assert b'href="/reports/"' not in client.get(reverse("courses:my-learning")).content
    client.force_login(hr)
    assert b'href="/reports/"' in client.get(reverse("courses:my-learning")).content


def test_the_token_command_prints_a_working_token_for_hr_only(client, org, hr, learner):
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("create_report_token", "hana", "--name", "HRIS", stdout=out)
    secret = out.getvalue().split(": ", 1)[1].split()[0]
    assert client.get(reverse("reports:export-json"), **_bearer(secret)).status_code == 200
    with pytest.raises(CommandError, match="not in the HR group"):
        call_command("create_report_token", "lee", stdout=io.StringIO())

"""Finding 5: an instructor saw every course's learners in the admin (enrollments, progress,
every submission with code and score); they see only the courses they teach. HR: unchanged."""

from __future__ import annotations

import pytest
from django.urls import reverse

from courses.models import Enrollment
from grading.models import CourseStaff, ModuleProgress
from labs.models import Lab, Submission
from tests.factories import CourseFactory, ModuleFactory, StageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_courses(lab, instructor):
    """The instructor teaches the demo course (with `lab`); another course has its own lab."""
    other = CourseFactory(slug="other-course", title="Other course")
    stage = StageFactory(course=other, slug="s", title="S", position=1)
    module = ModuleFactory(course=other, stage=stage, slug="other-lab", kind="lab", position=1)
    other_lab = Lab.objects.create(
        module=module,
        dataset=lab.dataset,
        base_model=lab.base_model,
        starter_code="HYPERPARAMETERS = {}\n",
        reference_solution="HYPERPARAMETERS = {'epochs': 1}\n",
        baseline=0.3,
        target=0.9,
    )
    CourseStaff.objects.create(course=lab.module.course, user=instructor)
    learner = UserFactory(username="pat")
    rows = {}
    for name, each_lab in (("taught", lab), ("other", other_lab)):
        course = each_lab.module.course
        rows[name] = {
            "enrollment": Enrollment.objects.create(learner=learner, course=course),
            "progress": ModuleProgress.objects.create(learner=learner, module=each_lab.module),
            "submission": Submission.objects.create(
                learner=learner, lab=each_lab, code=f"SECRET_{name.upper()} = 1\n"
            ),
        }
    return rows


PAGES = {
    "enrollment": "admin:courses_enrollment",
    "progress": "admin:grading_moduleprogress",
    "submission": "admin:labs_submission",
}


@pytest.mark.parametrize("kind", sorted(PAGES))
def test_finding_05_an_instructor_lists_only_the_courses_they_teach(
    client, instructor, two_courses, kind
):
    client.force_login(instructor)
    listing = client.get(reverse(f"{PAGES[kind]}_changelist"))
    assert listing.status_code == 200
    shown = {row.pk for row in listing.context["cl"].result_list}
    assert shown == {two_courses["taught"][kind].pk}


@pytest.mark.parametrize("kind", sorted(PAGES))
def test_finding_05_an_instructor_cannot_open_another_courses_row(
    client, instructor, two_courses, kind
):
    client.force_login(instructor)
    other = two_courses["other"][kind]
    response = client.get(reverse(f"{PAGES[kind]}_change", args=[other.pk]), follow=True)
    # The admin answers a row outside the queryset as "does not exist" (back to the index).
    assert response.redirect_chain and "doesn\u2019t exist" in response.content.decode()
    assert "SECRET_OTHER" not in response.content.decode()


def test_finding_05_hr_still_sees_every_course(client, hr, two_courses):
    client.force_login(hr)
    listing = client.get(reverse("admin:courses_enrollment_changelist"))
    assert {row.pk for row in listing.context["cl"].result_list} == {
        two_courses["taught"]["enrollment"].pk,
        two_courses["other"]["enrollment"].pk,
    }

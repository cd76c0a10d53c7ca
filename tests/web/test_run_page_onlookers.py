"""Who may read a learner's run page: its learner, and read-only an instructor of the
course or a superuser; HR and other instructors get 404 (issue 17)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

from grading.models import CourseStaff
from labs.models import Submission
from tests.factories import UserFactory
from tests.web.test_lab_feedback_panels import graded_run


def run_url(run: Submission) -> str:
    return reverse("labs:submission", args=[run.pk])


def test_an_instructor_of_the_course_reads_a_learners_run_with_a_banner(
    client, learner, instructor, lab
):
    learner.first_name, learner.last_name = "Lee", "Learner"
    learner.save()
    run = graded_run(learner, lab)
    CourseStaff.objects.create(course=lab.module.course, user=instructor)
    client.force_login(instructor)
    response = client.get(run_url(run))
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "<strong>Lee Learner</strong>\u2019s run, read-only: you are viewing it as staff." in page
    )
    # Nothing to act with: no editor, no resubmit, no cancel.
    assert 'id="code-editor"' not in page and "Train and grade" not in page
    assert reverse("labs:cancel", args=[run.pk]) not in page


def test_a_superuser_reads_any_run(client, learner, lab):
    run = graded_run(learner, lab)
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "x"))
    assert "read-only" in client.get(run_url(run)).content.decode()


def test_hr_and_an_instructor_of_another_course_get_404(client, learner, instructor, hr, lab):
    run = graded_run(learner, lab)
    for user in (hr, instructor):
        client.force_login(user)
        assert client.get(run_url(run)).status_code == 404


def test_the_owner_sees_no_banner(client, learner, lab):
    run = graded_run(learner, lab)
    client.force_login(learner)
    page = client.get(run_url(run)).content.decode()
    assert "read-only" not in page


def test_a_validation_run_is_worded_for_the_operator(client, instructor, lab):
    run = graded_run(instructor, lab, validation_of="starter")
    client.force_login(instructor)
    page = client.get(run_url(run)).content.decode()
    assert "Your first graded run" not in page and "Your previous best" not in page
    # The made-up grade scores 73, above the pass mark: a starter that passes is wrong.
    assert "<strong>Starter code: passes</strong> — WRONG: it must not pass." in page
    assert "it records the lab's starter score, not anyone's progress or attempts" in page


def test_a_staff_member_without_the_instructor_role_gets_404(client, learner, lab):
    run = graded_run(learner, lab)
    helper = UserFactory(username="staffer", is_staff=True)
    CourseStaff.objects.create(course=lab.module.course, user=helper)
    client.force_login(helper)
    assert client.get(run_url(run)).status_code == 404

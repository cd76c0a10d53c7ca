"""Assigning courses to people and departments, due dates, new members, the audit trail."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import EmployeeProfile, Enrollment
from grading.models import AuditEvent, DepartmentAssignment
from grading.reports.services import (
    assignment_create,
    department_assignments_sync,
    enrollment_set_due_date,
)
from tests.factories import DepartmentFactory, UserFactory
from tests.grading.reports_support import employee

DUE = timezone.localdate() + datetime.timedelta(days=14)


@pytest.fixture
def sales(db):
    department = DepartmentFactory(name="Sales", slug="sales")
    employee("ann", "S-1", department)
    employee("bob", "S-2", department)
    return department


def test_assigning_a_department_enrolls_every_member_with_the_due_date(course, hr, sales):
    report = assignment_create(course=course, due_date=DUE, actor=hr, departments=[sales])
    assert report.enrolled == 2
    rows = Enrollment.objects.filter(course=course)
    assert {(e.learner.username, e.due_date, e.assigned_by) for e in rows} == {
        ("ann", DUE, hr),
        ("bob", DUE, hr),
    }
    assert DepartmentAssignment.objects.filter(department=sales, course=course).exists()
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("assigned") == 2 and actions.count("department_assigned") == 1


def test_assigning_the_same_thing_twice_changes_nothing(course, hr, sales):
    assignment_create(course=course, due_date=DUE, actor=hr, departments=[sales])
    events = AuditEvent.objects.count()
    report = assignment_create(course=course, due_date=DUE, actor=hr, departments=[sales])
    assert (report.enrolled, report.due_dates_changed, report.unchanged) == (0, 0, 2)
    assert AuditEvent.objects.count() == events


def test_someone_who_joins_an_assigned_department_is_enrolled_too(course, hr, sales):
    assignment_create(course=course, due_date=DUE, actor=hr, departments=[sales])
    newcomer = employee("cleo", "S-3", None)
    assert department_assignments_sync() == 0
    EmployeeProfile.objects.filter(user=newcomer).update(department=sales)
    assert department_assignments_sync(user=newcomer) == 1
    enrollment = Enrollment.objects.get(learner=newcomer, course=course)
    assert enrollment.due_date == DUE and enrollment.assigned_by == hr
    event = AuditEvent.objects.get(learner=newcomer)
    assert event.detail["via_department"] == "sales"
    assert department_assignments_sync() == 0  # idempotent


def test_the_admin_enrolls_a_member_when_their_profile_gets_the_department(
    admin_client, course, hr, sales
):
    assignment_create(course=course, due_date=DUE, actor=hr, departments=[sales])
    user = UserFactory(username="dan")
    response = admin_client.post(
        reverse("admin:courses_employeeprofile_add"),
        {"user": user.pk, "employee_id": "S-4", "department": sales.pk, "manager": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    assert Enrollment.objects.filter(learner=user, course=course, due_date=DUE).exists()


def test_moving_a_due_date_is_audited_with_before_and_after(course, hr, learner):
    assignment_create(course=course, due_date=DUE, actor=hr, learners=[learner])
    enrollment = Enrollment.objects.get(learner=learner)
    later = DUE + datetime.timedelta(days=7)
    enrollment_set_due_date(enrollment=enrollment, due_date=later, actor=hr)
    event = AuditEvent.objects.filter(action="due_date_changed").get()
    assert event.actor == hr and event.learner == learner
    assert event.detail == {"from": DUE.isoformat(), "to": later.isoformat()}


def test_the_admin_records_a_due_date_changed_on_an_enrollment(
    admin_client, admin_user, course, learner
):
    enrollment = Enrollment.objects.create(learner=learner, course=course, due_date=DUE)
    later = DUE + datetime.timedelta(days=3)
    response = admin_client.post(
        reverse("admin:courses_enrollment_change", args=[enrollment.pk]),
        {
            "learner": learner.pk,
            "course": course.pk,
            "assigned_by": "",
            "due_date": later.isoformat(),
            "completed_at_0": "",
            "completed_at_1": "",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    event = AuditEvent.objects.get(action="due_date_changed")
    assert event.actor == admin_user and event.detail["to"] == later.isoformat()


def test_a_self_enrolled_learner_who_is_assigned_gets_the_due_date(course, hr, learner):
    Enrollment.objects.create(learner=learner, course=course)
    report = assignment_create(course=course, due_date=DUE, actor=hr, learners=[learner])
    enrollment = Enrollment.objects.get(learner=learner)
    assert (enrollment.due_date, enrollment.assigned_by) == (DUE, hr)
    assert report.due_dates_changed == 1


def test_a_finished_course_is_not_reopened_by_a_new_assignment(course, hr, learner):
    done = timezone.now()
    Enrollment.objects.create(learner=learner, course=course, completed_at=done, due_date=None)
    assignment_create(course=course, due_date=DUE, actor=hr, learners=[learner])
    assert Enrollment.objects.get(learner=learner).due_date is None


def test_hr_assigns_through_the_form_by_department_and_by_employee_id(client, hr, course, sales):
    other = employee("eve", "F-9", None)
    client.force_login(hr)
    response = client.post(
        reverse("reports:assign"),
        {
            "course": course.slug,
            "due_date": DUE.isoformat(),
            "departments": ["sales"],
            "people": "F-9",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/reports/?course=demo-course"
    assert set(Enrollment.objects.values_list("learner__username", flat=True)) == {
        "ann",
        "bob",
        "eve",
    }
    assert Enrollment.objects.get(learner=other).assigned_by == hr


def test_the_form_names_unknown_people_and_asks_for_someone(client, hr, course):
    client.force_login(hr)
    response = client.post(
        reverse("reports:assign"), {"course": course.slug, "people": "ghost, E-404"}
    )
    assert response.status_code == 400
    assert "No employee with this id or username: ghost, E-404" in response.content.decode()
    response = client.post(reverse("reports:assign"), {"course": course.slug})
    assert "Choose at least one department or person." in response.content.decode()
    response = client.post(reverse("reports:assign"), {"course": "nope", "people": "x"})
    assert response.status_code == 400


def test_the_admin_department_action_opens_the_form_with_them_ticked(admin_client, sales):
    response = admin_client.post(
        reverse("admin:courses_department_changelist"),
        {"action": "assign_course", "_selected_action": [sales.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == "/reports/assign/?departments=sales"
    page = admin_client.get(response["Location"])
    assert 'value="sales" checked' in page.content.decode().replace('id="id_departments_0" ', "")


def test_my_learning_lists_assigned_courses_first_and_marks_overdue(client, course, hr, learner):
    from tests.factories import CourseFactory

    late = CourseFactory(slug="late", title="Late course")
    later = CourseFactory(slug="later", title="Self-chosen course")
    Enrollment.objects.create(learner=learner, course=later)
    assignment_create(course=course, due_date=DUE, actor=hr, learners=[learner])
    assignment_create(
        course=late,
        due_date=timezone.localdate() - datetime.timedelta(days=2),
        actor=hr,
        learners=[learner],
    )
    client.force_login(learner)
    html = client.get(reverse("courses:my-learning")).content.decode()
    assert html.index("Late course") < html.index("Demo course") < html.index("Self-chosen course")
    assert "Overdue: was due" in html
    assert f"Due {DUE:%-d %b %Y}" in html


def test_adding_a_department_assignment_in_the_admin_enrolls_and_audits(
    admin_client, admin_user, course, sales
):
    response = admin_client.post(
        reverse("admin:grading_departmentassignment_add"),
        {"course": course.pk, "department": sales.pk, "due_date": DUE.isoformat()},
    )
    assert response.status_code == 302, response.content[:2000]
    assert Enrollment.objects.filter(course=course, due_date=DUE).count() == 2
    assert AuditEvent.objects.filter(action="department_assigned", actor=admin_user).exists()

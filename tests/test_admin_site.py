"""The admin is composed in academy/admin.py: every model once, with the highest app's class."""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.urls import reverse

import academy.admin
from courses import admin as courses_admin
from courses.models import (
    CheckAnswer,
    CheckAttempt,
    CheckOption,
    CheckOptionTranslation,
    CheckQuestion,
    CheckQuestionTranslation,
    Course,
    CourseTranslation,
    Department,
    EmployeeProfile,
    Enrollment,
    LanguagePreference,
    Module,
    ModuleTranslation,
    Stage,
    StageTranslation,
)
from grading import admin as grading_admin
from grading.models import (
    ApiToken,
    AuditEvent,
    CourseStaff,
    DepartmentAssignment,
    EmployeeImport,
    Grade,
    ModuleProgress,
    ReminderSent,
)
from labs import admin as labs_admin
from labs.models import Dataset, Example, Lab, Precheck, Prediction, Submission

PROJECT_APPS = {"courses", "labs", "grading", "runs", "web"}

# Written out here rather than read from academy/admin.py, so a change there shows.
EXPECTED = {
    Course: labs_admin.CourseAdmin,  # + course-folder upload, validate every lab
    Stage: courses_admin.StageAdmin,
    Module: courses_admin.ModuleAdmin,
    CheckQuestion: courses_admin.CheckQuestionAdmin,
    CheckOptionTranslation: courses_admin.CheckOptionTranslationAdmin,  # no inline in an inline
    CheckAttempt: grading_admin.TaughtCheckAttemptAdmin,  # instructors: their courses only
    Department: grading_admin.HrDepartmentAdmin,  # + HR's "assign a course"
    EmployeeProfile: grading_admin.HrEmployeeProfileAdmin,
    Enrollment: grading_admin.HrEnrollmentAdmin,
    Dataset: labs_admin.DatasetAdmin,
    Lab: labs_admin.LabAdmin,
    Submission: grading_admin.TaughtSubmissionAdmin,  # instructors: their courses only
    ModuleProgress: grading_admin.ModuleProgressAdmin,
    Grade: grading_admin.GradeAdmin,
    DepartmentAssignment: grading_admin.DepartmentAssignmentAdmin,
    AuditEvent: grading_admin.AuditEventAdmin,
    ReminderSent: grading_admin.ReminderSentAdmin,
    CourseStaff: grading_admin.CourseStaffAdmin,
    ApiToken: grading_admin.ApiTokenAdmin,
    EmployeeImport: grading_admin.EmployeeImportAdmin,
}
# Edited or read on their parent's page (options, answers), or never by hand (dataset rows,
# a person's interface language: only its owner sets it, with the header's switcher).
NOT_LISTED = {
    CheckOption,
    CheckAnswer,
    Example,
    LanguagePreference,
    # Translations: inline under their course, stage, module or question.
    CourseTranslation,
    StageTranslation,
    ModuleTranslation,
    CheckQuestionTranslation,
    # A learner's precheck or "try your model" request: a worker's short-lived answer.
    Precheck,
    Prediction,
}


def registered(site: AdminSite) -> dict[type, type]:
    return {
        model: type(model_admin)
        for model, model_admin in site._registry.items()
        if model._meta.app_label in PROJECT_APPS
    }


def test_every_project_model_is_registered_once_with_the_class_of_the_highest_app():
    assert registered(admin.site) == EXPECTED
    project_models = {m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS}
    assert project_models - set(EXPECTED) == NOT_LISTED


def test_the_composition_alone_fills_a_fresh_site_without_registering_anything_twice():
    # site.register raises AlreadyRegistered on a second registration of a model, and
    # the app admin modules (imported by autodiscover) register nothing themselves.
    site = AdminSite(name="fresh")
    academy.admin.register_models(site)
    assert registered(site) == EXPECTED


def test_extended_lists_keep_the_base_actions_and_add_their_own(client, instructor, hr, course):
    Department.objects.create(slug="finance", name="Finance")  # a list shows actions when not empty
    client.force_login(instructor)
    page = client.get(reverse("admin:courses_course_changelist")).content.decode()
    for action in ("publish", "unpublish", "validate_course_labs"):
        assert f'value="{action}"' in page, action
    assert reverse("admin:courses_course_upload") in page
    client.force_login(hr)
    page = client.get(reverse("admin:courses_department_changelist")).content.decode()
    assert 'value="assign_course"' in page

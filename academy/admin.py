"""The admin, composed in one place: every model registered once, with its one class.

Each app's admin.py defines ModelAdmin classes and registers nothing. Where an app
higher up extends a lower app's list (labs adds the course-folder upload and lab
validation to the course list; grading adds HR's actions to departments, profiles and
enrollments), its class is a subclass and it is the one named here. Nothing depends on
the order of INSTALLED_APPS; academy/urls.py imports this module, so the registry is
full before the admin's URLs are built.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import AdminSite, ModelAdmin
from django.db.models import Model

from academy.signin import RateLimitedAdminAuthenticationForm
from courses import admin as courses_admin
from courses import models as courses_models
from grading import admin as grading_admin
from grading import models as grading_models
from labs import admin as labs_admin
from labs import models as labs_models

MODEL_ADMINS: dict[type[Model], type[ModelAdmin]] = {
    # courses
    courses_models.Course: labs_admin.CourseAdmin,
    courses_models.Stage: courses_admin.StageAdmin,
    courses_models.Module: courses_admin.ModuleAdmin,
    courses_models.CheckQuestion: courses_admin.CheckQuestionAdmin,
    courses_models.CheckOptionTranslation: courses_admin.CheckOptionTranslationAdmin,
    courses_models.CheckAttempt: grading_admin.TaughtCheckAttemptAdmin,
    courses_models.Department: grading_admin.HrDepartmentAdmin,
    courses_models.EmployeeProfile: grading_admin.HrEmployeeProfileAdmin,
    courses_models.Enrollment: grading_admin.HrEnrollmentAdmin,
    # labs
    labs_models.Dataset: labs_admin.DatasetAdmin,
    labs_models.Lab: labs_admin.LabAdmin,
    labs_models.Submission: grading_admin.TaughtSubmissionAdmin,
    # grading
    grading_models.ModuleProgress: grading_admin.ModuleProgressAdmin,
    grading_models.Grade: grading_admin.GradeAdmin,
    grading_models.DepartmentAssignment: grading_admin.DepartmentAssignmentAdmin,
    grading_models.AuditEvent: grading_admin.AuditEventAdmin,
    grading_models.ReminderSent: grading_admin.ReminderSentAdmin,
    grading_models.CourseStaff: grading_admin.CourseStaffAdmin,
    grading_models.ApiToken: grading_admin.ApiTokenAdmin,
    grading_models.EmployeeImport: grading_admin.EmployeeImportAdmin,
}

# Models with no list of their own: edited or read inline on their parent's page
# (options on a question, answers on an attempt) or never by hand (dataset rows).
INLINE_ONLY: frozenset[type[Model]] = frozenset(
    {
        courses_models.CheckOption,
        courses_models.CheckAnswer,
        labs_models.Example,
        # Translations: inline under their course, stage, module or question.
        courses_models.CourseTranslation,
        courses_models.StageTranslation,
        courses_models.ModuleTranslation,
        courses_models.CheckQuestionTranslation,
    }
)


def register_models(site: AdminSite) -> None:
    for model, model_admin in MODEL_ADMINS.items():
        site.register(model, model_admin)


register_models(admin.site)
# The admin's sign-in counts failures like every other password form (academy.signin).
admin.site.login_form = RateLimitedAdminAuthenticationForm

"""Progress and grades (read-only), HR's assignments, audit trail, reminders, tokens and
course staff, and the HR actions on the people lists of courses.

The classes only; `academy/admin.py` registers them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from academy.numbers import metric_text, score_text
from courses.admin import (
    CheckAttemptAdmin,
    DepartmentAdmin,
    EmployeeProfileAdmin,
    EnrollmentAdmin,
    ReadOnlyAdmin,
)
from courses.models import Department, EmployeeProfile, Enrollment
from grading.models import (
    ApiToken,
    AuditEvent,
    CourseStaff,
    DepartmentAssignment,
    Grade,
    ModuleProgress,
)
from grading.reports.selectors import audit_sentence, is_hr
from grading.reports.services import (
    api_token_create,
    api_token_revoke,
    assignment_create,
    department_assignments_sync,
    enrollment_set_due_date,
)
from labs.admin import SubmissionAdmin


class TaughtCoursesOnly(admin.ModelAdmin):
    """A list of learners' work that an instructor sees only for the courses they teach.

    HR and superusers see every row, as before. The filter is the queryset's, so the
    change list, each object's page (a 404 for another course's row), search and actions
    all obey it. `course_lookup` is the path from the model to its course."""

    course_lookup = "course"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)
        if is_hr(request.user):
            return rows
        taught = CourseStaff.objects.filter(user=_actor(request)).values("course_id")
        return rows.filter(**{f"{self.course_lookup}__in": taught})


class ModuleProgressAdmin(TaughtCoursesOnly, ReadOnlyAdmin):
    course_lookup = "module__course"

    list_display = ["learner", "module", "status", "best", "completed_at"]
    list_filter = ["status", "module__course"]
    search_fields = ["learner__username", "module__slug"]

    @admin.display(description=gettext_lazy("best score"), ordering="best_score")
    def best(self, obj: ModuleProgress) -> str:
        return score_text(obj.best_score)


class GradeAdmin(TaughtCoursesOnly, ReadOnlyAdmin):
    course_lookup = "submission__lab__module__course"
    list_display = [
        "submission",
        "metric",
        "measured",
        "scored",
        "passed",
        "graded_at",
        "regraded_at",
    ]
    list_filter = ["passed", "submission__lab"]

    @admin.display(description=gettext_lazy("metric value"), ordering="metric_value")
    def measured(self, obj: Grade) -> str:
        return metric_text(obj.metric_value)

    @admin.display(description=gettext_lazy("score"), ordering="score")
    def scored(self, obj: Grade) -> str:
        return score_text(obj.score)


# --------------------------------------------------------------------------
# HR: assignments, audit trail, reminders, tokens, course staff


def _actor(request: HttpRequest) -> User:
    # The admin only serves signed-in staff: its views never see an anonymous user.
    user = request.user
    assert isinstance(user, User)
    return user


def _assign_redirect(**params: list[str]) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("reports:assign") + "?" + urlencode(params, doseq=True))


class DepartmentAssignmentAdmin(admin.ModelAdmin):
    """Saving here goes through the assignment service: members are enrolled and it is audited."""

    list_display = ["course", "department", "due_date", "assigned_by", "created_at"]
    list_filter = ["course", "department"]
    fields = ["course", "department", "due_date"]
    actions = ["sync_members"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        # Another course or department is another assignment: add it, do not rewrite this one.
        return ["course", "department"] if obj else []

    def save_model(self, request: HttpRequest, obj: DepartmentAssignment, form, change) -> None:
        result = assignment_create(
            course=obj.course,
            due_date=obj.due_date,
            actor=_actor(request),
            departments=[obj.department],
        )
        obj.pk = DepartmentAssignment.objects.get(course=obj.course, department=obj.department).pk
        messages.info(request, result.message(obj.course))

    @admin.action(description=gettext_lazy("Enroll members who joined since"))
    def sync_members(self, request: HttpRequest, queryset: QuerySet[DepartmentAssignment]) -> None:
        self.message_user(
            request,
            _("%(count)d new member(s) enrolled.") % {"count": department_assignments_sync()},
        )


class HrDepartmentAdmin(DepartmentAdmin):
    """Departments, with "assign a course" for HR."""

    actions = ["assign_course"]

    @admin.action(description=gettext_lazy("Assign a course to the selected departments…"))
    def assign_course(self, request: HttpRequest, queryset: QuerySet[Department]):
        return _assign_redirect(departments=list(queryset.values_list("slug", flat=True)))


class HrEmployeeProfileAdmin(EmployeeProfileAdmin):
    """A profile saved with a department gets that department's assigned courses."""

    actions = ["assign_course"]

    def save_model(self, request: HttpRequest, obj: EmployeeProfile, form, change) -> None:
        super().save_model(request, obj, form, change)
        department_assignments_sync(user=obj.user)

    @admin.action(description=gettext_lazy("Assign a course to the selected employees…"))
    def assign_course(self, request: HttpRequest, queryset: QuerySet[EmployeeProfile]):
        return _assign_redirect(people=[" ".join(queryset.values_list("employee_id", flat=True))])


class HrEnrollmentAdmin(TaughtCoursesOnly, EnrollmentAdmin):
    """A due date moved here is recorded in the audit trail."""

    def save_model(self, request: HttpRequest, obj: Enrollment, form, change) -> None:
        if change and "due_date" in form.changed_data:
            enrollment_set_due_date(enrollment=obj, due_date=obj.due_date, actor=_actor(request))
        super().save_model(request, obj, form, change)


class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "learner", "course", "department", "details"]
    list_filter = ["action", "course"]

    search_fields = ["learner__username", "actor__username"]
    list_select_related = ["actor", "learner", "course", "department"]

    @admin.display(description="details")
    def details(self, obj: AuditEvent) -> str:
        return audit_sentence(obj)


class EmployeeImportAdmin(ReadOnlyAdmin):
    """Who imported which directory file, and what it changed (the file itself stays out)."""

    list_display = ["uploaded_at", "uploaded_by", "filename", "applied_at", "summary"]
    fields = ["uploaded_at", "uploaded_by", "filename", "sha256", "applied_at", "summary"]
    list_select_related = ["uploaded_by"]


class ReminderSentAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "reason", "recipient", "key"]
    list_filter = ["reason"]


class CourseStaffAdmin(admin.ModelAdmin):
    list_display = ["course", "user"]
    list_filter = ["course"]
    autocomplete_fields = ["user"]


class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens for the exports: the secret is shown once, on creation; only its hash is kept."""

    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name"]
    actions = ["revoke"]
    autocomplete_fields = ["user"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change) -> None:
        token, secret = api_token_create(user=obj.user, name=obj.name)
        obj.pk = token.pk
        messages.warning(
            request,
            _("Token for %(user)s: %(secret)s — copy it now, it is not shown again.")
            % {"user": obj.user, "secret": secret},
        )

    @admin.action(description=gettext_lazy("Revoke selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            api_token_revoke(token=token)


class TaughtCheckAttemptAdmin(TaughtCoursesOnly, CheckAttemptAdmin):
    course_lookup = "module__course"


class TaughtSubmissionAdmin(TaughtCoursesOnly, SubmissionAdmin):
    course_lookup = "lab__module__course"

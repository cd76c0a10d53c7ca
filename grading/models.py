"""Scores and progress. `ModuleProgress` is the one source of truth for where a
learner stands in a course; stage unlocking is computed from it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from courses.models import Module


class ModuleProgress(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")

    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="module_progress"
    )
    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="progress")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    best_score = models.FloatField(null=True, blank=True)
    best_submission = models.ForeignKey(
        "labs.Submission", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("module progress")
        verbose_name_plural = _("module progress")
        constraints = [
            models.UniqueConstraint(fields=["learner", "module"], name="one_progress_per_module")
        ]

    def __str__(self) -> str:
        return f"{self.learner} · {self.module} · {self.status}"


class Grade(models.Model):
    """The held-out score of one submission: written once (a second delivery writes nothing)."""

    submission = models.OneToOneField(
        "labs.Submission", on_delete=models.CASCADE, related_name="grade"
    )
    metric = models.CharField(max_length=40)
    metric_value = models.FloatField()
    score = models.FloatField()
    passed = models.BooleanField()
    # The rubric in force when this grade was computed (a later rubric change re-grades).
    baseline = models.FloatField()
    target = models.FloatField()
    pass_mark = models.FloatField()
    # The floors in force, each with what was required, what the model reached and whether
    # it was met (grading.services.floor_results): a pass needs them all.
    floors = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict)
    # The grader's check of the saved weights against the base model (changed and total
    # parameters, the share, each changed tensor's kind and rank): grading.evaluation
    # .check_weights. Empty for grades from before the check.
    weight_check = models.JSONField(default=dict, blank=True)
    heldout_size = models.PositiveIntegerField()
    eval_seconds = models.FloatField()
    eval_samples_per_second = models.FloatField()
    device = models.CharField(max_length=100)
    graded_at = models.DateTimeField(auto_now_add=True)
    regraded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("grade")
        verbose_name_plural = _("grades")

    def __str__(self) -> str:
        return f"grade {self.score:.0f} for submission {self.submission_id}"


# --------------------------------------------------------------------------
# HR: assignments, audit trail, reminders, machine tokens, course staff


class DepartmentAssignment(models.Model):
    """A course assigned to a whole department: every member, present and future, is enrolled.

    The enrollment rows themselves live in `courses.Enrollment`; this row is what lets a
    new member of the department be enrolled too (see `department_assignments_sync`).
    """

    department = models.ForeignKey(
        "courses.Department", on_delete=models.CASCADE, related_name="assignments"
    )
    course = models.ForeignKey(
        "courses.Course", on_delete=models.CASCADE, related_name="department_assignments"
    )
    due_date = models.DateField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("department assignment")
        verbose_name_plural = _("department assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["department", "course"], name="one_assignment_per_department_course"
            )
        ]

    def __str__(self) -> str:
        return f"{self.course} → {self.department}"


class CourseStaff(models.Model):
    """Who teaches a course. An instructor's report shows only the courses they are staff of."""

    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="courses_taught"
    )

    class Meta:
        verbose_name = _("course staff")
        verbose_name_plural = _("course staff")
        constraints = [
            models.UniqueConstraint(fields=["course", "user"], name="one_staff_row_per_course_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} teaches {self.course}"


class AuditEvent(models.Model):
    """Who assigned what, moved which due date, re-graded which run: append-only evidence."""

    class Action(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned a course")
        DEPARTMENT_ASSIGNED = "department_assigned", _("Assigned a course to a department")
        DUE_DATE_CHANGED = "due_date_changed", _("Changed a due date")
        REGRADED = "regraded", _("Re-graded a run")

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=30, choices=Action.choices)
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    course = models.ForeignKey(
        "courses.Course", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    department = models.ForeignKey(
        "courses.Department", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submission = models.ForeignKey(
        "labs.Submission", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Before/after values (due dates as ISO strings, scores as numbers).
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["learner", "at"], name="audit_learner_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.get_action_display()}"


class ReminderSent(models.Model):
    """One row per email sent: the unique key makes each reminder go out once per reason.

    The key names the reason and what it is about, e.g. `due_soon:enrollment:42:2026-12-10`
    (a moved due date is a new reason) or `manager_weekly:user:7:2026-W49`.
    """

    class Reason(models.TextChoices):
        DUE_SOON = "due_soon", _("Due soon")
        OVERDUE = "overdue", _("Overdue")
        MANAGER_WEEKLY = "manager_weekly", _("Weekly overdue summary")

    key = models.CharField(max_length=120, unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    enrollment = models.ForeignKey(
        "courses.Enrollment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("reminder sent")
        verbose_name_plural = _("reminders sent")

    def __str__(self) -> str:
        return self.key


class ApiToken(models.Model):
    """A machine credential for the reports JSON/CSV exports.

    Only a SHA-256 of the secret is stored. A token acts as its owner: it sees exactly
    what the owner may see, checked on every request, so removing the owner from HR
    (or deactivating them) disables the token.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("api token")
        verbose_name_plural = _("api tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.user})"


class EmployeeImport(models.Model):
    """An uploaded directory file, kept between its preview and its confirmation.

    The confirmation names this row and the file's hash, so what is applied is the very file
    that was previewed; an applied row stays as the record of who imported what, and when.
    """

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    plan_digest = models.CharField(max_length=64)
    applied_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.uploaded_at:%Y-%m-%d %H:%M})"

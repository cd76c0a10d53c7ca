"""Scores and progress. `ModuleProgress` is the one source of truth for where a
learner stands in a course; stage unlocking is computed from it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from courses.models import Module


class ModuleProgress(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

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
        verbose_name_plural = "module progress"
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
    metrics = models.JSONField(default=dict)
    heldout_size = models.PositiveIntegerField()
    eval_seconds = models.FloatField()
    eval_samples_per_second = models.FloatField()
    device = models.CharField(max_length=100)
    graded_at = models.DateTimeField(auto_now_add=True)
    regraded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"grade {self.score:.0f} for submission {self.submission_id}"

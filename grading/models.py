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

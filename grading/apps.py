from __future__ import annotations

from django.apps import AppConfig


class GradingConfig(AppConfig):
    name = "grading"
    verbose_name = "Grading and progress"

    def ready(self) -> None:
        from grading.services import submission_grade
        from labs.services import register_post_training

        # Scores each trained run on the worker that holds its checkpoint.
        register_post_training(submission_grade)

"""Trying a graded run's model on a worker, top to bottom: the learner's texts in, labels out.

    message on the `inference` queue (runs/tasks.py)
      → claim the row                      labs.services.queries.query_claim
      → find the run's checkpoint          in its job folder on this worker's disk, kept
                                           for ACADEMY_JOB_RETENTION_DAYS (runs/jobs.py)
      → serve the texts                    the run's `preprocess`, in the grader's silent
                                           sandboxed stage (runs/serving.texts_served)
      → predict                            grading.services.checkpoint_predictions: loaded
                                           and run as the grader does, outside the sandbox
      → finish the row                     done (a label and probabilities per text) or
                                           failed, with the reason

Nothing here uses an attempt or touches a grade, and nothing is retried: the learner asks
again. The web process never imports torch for it: it only writes the row and polls it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from grading.evaluation import CheckpointRejected
from grading.services import checkpoint_predictions
from labs.models import Prediction
from labs.services.queries import query_claim
from labs.training.contract import may_define_hook
from runs.jobs import job_dir_for
from runs.serving import ServingRefused, texts_served

logger = logging.getLogger(__name__)

CHECKPOINT_GONE = (
    "This run's model is no longer kept: job folders are removed {days} days after a run "
    "ends (or the run was trained on another worker). Train again to try a model."
)


def prediction_run(*, prediction_id: int) -> str | None:
    """Answer one queued prediction; its final status, or None when it was not claimable."""
    if not query_claim(Prediction, pk=prediction_id):
        logger.info("Prediction %s not claimable (taken, finished or given up)", prediction_id)
        return None
    prediction = Prediction.objects.select_related("submission__lab__dataset").get(pk=prediction_id)
    submission = prediction.submission
    job_dir = job_dir_for(submission)
    if not (job_dir / "checkpoint").is_dir():
        days = settings.ACADEMY_JOB_RETENTION_DAYS
        return _finish(prediction, Prediction.Status.FAILED, CHECKPOINT_GONE.format(days=days))
    texts = list(prediction.texts)
    try:
        if may_define_hook(submission.code, "preprocess"):
            texts = texts_served(submission=submission, texts=texts)
        found = checkpoint_predictions(submission.lab, job_dir, texts)
    except ServingRefused:
        return _finish(
            prediction,
            Prediction.Status.FAILED,
            "Your run's preprocess failed on one of these texts (it raised, or did not return "
            "a text), so the model was not asked.",
        )
    except CheckpointRejected as exc:
        return _finish(prediction, Prediction.Status.FAILED, str(exc))
    except Exception:
        logger.exception("Prediction %s: platform fault", prediction.pk)
        return _finish(
            prediction,
            Prediction.Status.FAILED,
            "The platform could not run your model (not your fault). Try again.",
        )
    result = [
        {"text": text, **answer} for text, answer in zip(prediction.texts, found, strict=True)
    ]
    return _finish(prediction, Prediction.Status.DONE, result=result)


def _finish(prediction: Prediction, status: str, error_message: str = "", **fields: Any) -> str:
    Prediction.objects.filter(pk=prediction.pk).update(
        status=status, finished_at=timezone.now(), error_message=error_message, **fields
    )
    return status

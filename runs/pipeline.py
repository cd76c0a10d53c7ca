"""The path of one lab run on a worker, top to bottom.

    wake-up (runs/tasks.py)
      → claim the fairest queued row            submission_run_next / submission_claim
      → write its job folder                    runs/jobs.py (never the held-out split)
      → run the engine in the sandbox           _train: progress streams into the row
                                                (runs/reporter.py, also the heartbeat)
      → read how training ended                 _training_verdict: cancelled, the
                                                learner's error, a limit, or our fault
      → serve the held-out texts                _serve: the learner's preprocess on them,
                                                in a silent sandbox (runs/serving.py)
      → grade the checkpoint                    _grade → grading.services.submission_grade
      → finish the row                          labs.services.submissions.submission_finish

Messages carry no work of their own: the rows do. A duplicate delivery claims
nothing twice; a lost message is made up by the sweep (runs/sweep.py), which
also requeues a run whose heartbeat stopped. The learner's faults end `error`
and use an attempt; the platform's own end `failed` (after retries for faults
of training, none for grading) and never use one.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

import sandbox
from academy.deadlines import database_calls_bounded
from courses.selectors import language_preference_of
from grading.services import submission_grade
from labs.models import Lab, Submission
from labs.selectors import submissions_fair_order
from labs.services.submissions import queue_wake, submission_finish
from labs.training.base_models import resolve_base_model
from runs.jobs import (
    JOB_MOUNT,
    MODEL_MOUNT,
    disk_nearly_full,
    engine_argv,
    engine_policy,
    job_write,
    learner_log,
    training_precision,
)
from runs.reporter import RunReporter
from runs.serving import ServingFault, ServingRefused, ServingStopped, heldout_served
from sandbox import LIMIT_OUTCOMES, SandboxError, SandboxResult, SandboxUnavailable

logger = logging.getLogger(__name__)

# A run the platform failed to train is queued again this many times before it ends failed.
MAX_PLATFORM_RETRIES = 2
# Candidates tried per wake-up when another worker wins the race for the first.
CLAIM_CANDIDATES = 5


# --------------------------------------------------------------------------
# Entry points: a wake-up for a queue, or one named row (validate_course)


def submission_run_next(
    *, queue: str, worker: str | None = None, hint: int | None = None
) -> str | None:
    """A wake-up: claim and run the fairest queued run of the queue. None if none waits."""
    with database_calls_bounded():
        submission = submission_claim_next(queues=[queue], worker=worker or socket.gethostname())
        if submission is None:
            logger.info(
                "Queue %s: nothing queued for wake-up %s (not claimable: taken or finished)",
                queue,
                hint,
            )
            return None
        if hint is not None and hint != submission.pk:
            logger.info("Wake-up %s runs submission %s (fair order)", hint, submission.pk)
        return _run_claimed(submission)


def submission_run(*, submission_id: int, worker: str | None = None) -> str | None:
    """Claim and run one given submission (validate_course's direct path). None if not claimable."""
    with database_calls_bounded():
        submission = submission_claim(
            submission_id=submission_id, worker=worker or socket.gethostname()
        )
        if submission is None:
            logger.info("Submission %s not claimable (already taken or finished)", submission_id)
            return None
        return _run_claimed(submission)


def submission_queue(*, submission_id: int | None) -> str:
    """The queue a submission's lab runs on (cpu when the row is gone)."""
    if submission_id is None:
        return Lab.Queue.CPU
    queue = Submission.objects.filter(pk=submission_id).values_list("lab__queue", flat=True).first()
    return queue or Lab.Queue.CPU


# --------------------------------------------------------------------------
# 1. Claim


def submission_claim(*, submission_id: int, worker: str) -> Submission | None:
    """queued → running, atomically. A second delivery of the same job finds nothing to claim."""
    now = timezone.now()
    claimed = Submission.objects.filter(pk=submission_id, status=Submission.Status.QUEUED).update(
        status=Submission.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker=worker,
        deliveries=F("deliveries") + 1,
        step=0,
        total_steps=0,
        epoch=0,
        loss_curve=[],
        dev_curve=[],
        run_info={},
        training_precision="",
        result={},
        error_message="",
        learner_traceback="",
        log_tail="",
        counts_as_attempt=False,
        phase=Submission.Phase.TRAINING,
    )
    if not claimed:
        return None
    return Submission.objects.select_related("lab__dataset", "lab__module").get(pk=submission_id)


def submission_claim_next(*, queues: Sequence[str], worker: str) -> Submission | None:
    """Claim the fairest queued run of these queues, or None when none is waiting."""
    for _attempt in range(3):
        candidates = list(
            submissions_fair_order(queues=queues).values_list("pk", flat=True)[:CLAIM_CANDIDATES]
        )
        if not candidates:
            return None
        for pk in candidates:  # another worker may win a row between the read and the update
            submission = submission_claim(submission_id=pk, worker=worker)
            if submission is not None:
                return submission
    return None


# --------------------------------------------------------------------------
# 2 to 6. A claimed run, from its job folder to its final state


def _run_claimed(submission: Submission) -> str:
    """The run, its messages written in the learner's saved interface language (they are
    stored on the row, so they are worded here, once)."""
    language = language_preference_of(user=submission.learner) or settings.LANGUAGE_CODE
    with translation.override(language):
        return _run_claimed_in_language(submission)


def _run_claimed_in_language(submission: Submission) -> str:
    """Every query on the way is bounded by the caller, so a database that hangs reads
    as one that went away (see RunReporter). Returns the row's status."""
    reporter = RunReporter(submission)
    try:
        precision = training_precision()
        reporter.pending.update(training_precision=precision)  # the host's word, not the run's
        job_dir = job_write(submission, precision=precision)
        result = _train(submission, job_dir, reporter)
    except SandboxUnavailable as exc:
        return _sandbox_unavailable(submission, exc)
    except Exception:
        logger.exception("Platform fault training submission %s", submission.pk)
        full = disk_nearly_full(Path(settings.ACADEMY_JOBS_DIR))  # e.g. files not written back
        reason = _("the worker's disk is full") if full else ""
        return _platform_fault_recorded(submission, detail=traceback.format_exc(), reason=reason)
    reporter.flush(force=True)
    if reporter.lost_ownership:
        return Submission.Status.RUNNING  # another worker owns the row now
    final = _training_verdict(submission, result, reporter, job_dir)
    if final is not None:
        return final
    final, texts = _serve(submission, reporter)
    if final is not None:
        return final
    return _grade(submission, job_dir, reporter, texts)


def _train(submission: Submission, job_dir: Path, reporter: RunReporter) -> SandboxResult:
    """The engine, sandboxed, on this job folder; its events stream into the row."""
    lab = submission.lab
    policy = engine_policy(
        lab,
        job_dir,
        wall_seconds=lab.wall_time_seconds,
        ro_binds={resolve_base_model(lab.base_model): MODEL_MOUNT},
        gpu=lab.queue == Lab.Queue.GPU,
    )
    return sandbox.run(
        policy,
        argv=engine_argv("--spec", f"{JOB_MOUNT}/spec.json"),
        on_stdout_line=reporter.handle_line,
        should_stop=reporter.should_stop,
    )


def _training_verdict(
    submission: Submission, result: SandboxResult, reporter: RunReporter, job_dir: Path
) -> str | None:
    """The final status when training did not produce a checkpoint to grade, else None.

    Who is at fault is decided here, from what the host saw (the sandbox's outcome, the
    disk) and from where the run got to. Until the engine announced `loading_code`, no
    line of the learner's had run: a failure then is ours. After it, their code shares
    the engine's process and can end it, signal it or write to its event channel, so a
    failure is theirs, with the one exception the host can check itself: a full disk."""
    common: dict[str, Any] = {
        "sandbox_mode": str(result.mode),
        "log_tail": learner_log(result.stderr_tail, submission.lab),
        "run_info": {
            **reporter.run_info,
            "memory_enforcement": result.memory_enforcement,
            # The host's own facts, beside what the run's process reported of itself.
            "host_wall_s": round(result.wall_seconds, 1),
            "host_device": "gpu" if result.devices else "cpu",
        },
    }
    if reporter.tampered is not None:
        return _learner_fault(
            submission,
            _(
                "Your code wrote to the training engine's event channel (%(what)s), so the "
                "run was stopped: only the engine may write there. Print to standard output "
                "or standard error instead; both go to your log."
            )
            % {"what": reporter.tampered},
            **common,
        )
    if result.outcome == "cancelled":
        submission_finish(
            submission,
            Submission.Status.CANCELLED,
            error_message=_("You cancelled this run."),
            **common,
        )
        return Submission.Status.CANCELLED
    if result.outcome == "ok" and reporter.done is not None:
        reporter.pending.update(
            phase=Submission.Phase.GRADING,
            # Its wall time by the host's clock: the engine's own figure is the learner's
            # process speaking.
            result={**reporter.done, "wall_s": round(result.wall_seconds, 1)},
            samples_per_second=reporter.samples_per_second,
            **common,
        )
        reporter.flush(force=True)
        return None  # a checkpoint: on to grading
    if not reporter.code_loaded:
        return _platform_fault_recorded(
            submission,
            detail=f"engine exited {result.returncode} ({result.outcome}) before loading "
            f"the learner's code: {reporter.platform_error or reporter.spec_error or ''}",
            learner_output=result.stderr_tail,
        )
    if result.outcome in sandbox.QUOTA_OUTCOMES:
        # The run filled its own job-folder quota or process limit (the host saw it): theirs.
        return _learner_fault(submission, result.detail, **common)
    if reporter.platform_error is not None and disk_nearly_full(job_dir):
        # The engine could not write the checkpoint because the worker's disk is full: our
        # fault, retried, never an attempt. (Checked on the host: the event alone is not proof.)
        return _platform_fault_recorded(
            submission,
            detail=f"the job folder's disk is full: {reporter.platform_error.get('message', '')}",
            learner_output=result.stderr_tail,
            reason=_("the worker's disk is full"),
        )
    if reporter.learner_error is not None:
        return _learner_fault(
            submission,
            str(reporter.learner_error.get("message", "")),
            learner_traceback=str(reporter.learner_error.get("traceback", ""))[-8000:],
            **common,
        )
    if reporter.platform_error is not None:
        # The engine failed with the learner's code in its process, which can patch the
        # engine at will: the operators see it; the attempt is used, and said so.
        message = str(reporter.platform_error.get("message", ""))[:300]
        logger.error("Submission %s: engine failure after loading code: %s", submission.pk, message)
        return _learner_fault(
            submission,
            _(
                "The training engine failed while your code was loaded in its process "
                "(%(message)s). Your code runs inside that process and can change it, so "
                "this counts as an attempt. If your code does not touch the engine, tell "
                "your instructor, naming run #%(run)s."
            )
            % {"message": message, "run": submission.pk},
            **common,
        )
    if result.outcome in LIMIT_OUTCOMES:
        return _learner_fault(submission, result.detail, **common)
    # The process ended without a verdict of its own: an exit, or a signal, from code that
    # shares it (os._exit, sys.exit in a hook, a kill of its own process).
    return _learner_fault(
        submission,
        _(
            "%(detail)s Your code runs inside the training process, so an exit or a signal "
            "from it ends the run before it finishes; this counts as an attempt."
        )
        % {"detail": result.detail},
        **common,
    )


def _learner_fault(
    submission: Submission, message: str, *, learner_traceback: str = "", **common: Any
) -> str:
    """The learner's code ended the run: `error`, an attempt used, never retried."""
    submission_finish(
        submission,
        Submission.Status.ERROR,
        counts_as_attempt=True,
        error_message=message[:2000],
        learner_traceback=learner_traceback,
        **common,
    )
    return Submission.Status.ERROR


def _serve(submission: Submission, reporter: RunReporter) -> tuple[str | None, list[str] | None]:
    """The held-out texts through the learner's preprocess, as a serving system would feed
    the model (runs/serving.py; nothing of the stage is kept). Returns (the final status,
    None) when the stage ended the run, else (None, the texts to grade; None: raw)."""

    def lost() -> bool:
        reporter.flush()  # the heartbeat while the stage runs
        return reporter.lost_ownership

    try:
        return None, heldout_served(submission=submission, should_stop=lost)
    except ServingRefused as exc:
        return _learner_fault(submission, str(exc)), None
    except ServingStopped:
        return Submission.Status.RUNNING, None  # another worker owns the row now
    except SandboxUnavailable as exc:
        return _sandbox_unavailable(submission, exc), None
    except (SandboxError, ServingFault) as exc:
        return _platform_fault_recorded(submission, detail=f"serving stage: {exc}"), None
    except DatabaseError:
        logger.exception("Submission %s: database unreachable while serving", submission.pk)
        return Submission.Status.RUNNING, None
    except Exception:
        logger.exception("Serving fault on submission %s (not retried)", submission.pk)
        return _grading_failed(submission), None


def _grade(
    submission: Submission, job_dir: Path, reporter: RunReporter, texts: list[str] | None
) -> str:
    """Held-out evaluation, the Grade and progress (grading.services). A fault here is ours,
    but training again would not mend it: the run ends failed once, with no retry."""
    try:
        # The throttled flush is also the heartbeat while the grader works.
        submission_grade(
            submission=submission, job_dir=job_dir, texts=texts, heartbeat=reporter.flush
        )
    except DatabaseError:
        # The database went away: leave the row running; the sweep requeues it once the
        # database answers and its heartbeat is seen to be stale.
        logger.exception("Submission %s: database unreachable while grading", submission.pk)
        return Submission.Status.RUNNING
    except Exception:
        logger.exception("Grading fault on submission %s (not retried)", submission.pk)
        return _grading_failed(submission)
    return Submission.objects.values_list("status", flat=True).get(pk=submission.pk)


def _grading_failed(submission: Submission) -> str:
    submission_finish(
        submission,
        Submission.Status.FAILED,
        counts_as_attempt=False,
        error_message=_(
            "The platform could not grade your run (not your fault; no attempt was used). "
            "Your instructor has been told; please submit again later."
        ),
    )
    return Submission.Status.FAILED


# --------------------------------------------------------------------------
# The platform's own faults


def _sandbox_unavailable(submission: Submission, exc: SandboxUnavailable) -> str:
    submission_finish(
        submission,
        Submission.Status.FAILED,
        counts_as_attempt=False,
        error_message=_("This worker cannot run code safely: %(reason)s No attempt was used.")
        % {"reason": exc},
    )
    return Submission.Status.FAILED


def _platform_fault_recorded(
    submission: Submission, *, detail: str, learner_output: str = "", reason: str = ""
) -> str:
    """`detail` (the worker's own account, e.g. its traceback) goes to the worker's log only:
    host paths and source lines are no learner's to read. `learner_output` is what their
    program printed, shown as such."""
    logger.error("Submission %s: platform fault: %s", submission.pk, detail)
    try:
        return _platform_fault(
            submission, log_tail=learner_log(learner_output, submission.lab), reason=reason
        )
    except DatabaseError:
        # The database is out of reach as well: the row stays running, its heartbeat
        # ages, and the sweep requeues it once the database answers again.
        logger.exception("Submission %s: could not record the platform fault", submission.pk)
        return Submission.Status.RUNNING


def _platform_fault(submission: Submission, *, log_tail: str, reason: str = "") -> str:
    """Our fault, not the learner's: retry a couple of times, never count an attempt."""
    if submission.platform_retries < MAX_PLATFORM_RETRIES:
        moved = Submission.objects.filter(
            pk=submission.pk, status=Submission.Status.RUNNING, deliveries=submission.deliveries
        ).update(
            status=Submission.Status.QUEUED,
            platform_retries=F("platform_retries") + 1,
            counts_as_attempt=False,
            worker="",
        )
        if moved:
            queue_wake(queue=submission.lab.queue, hint=submission.pk, countdown=5)
            return Submission.Status.QUEUED
    submission_finish(
        submission,
        Submission.Status.FAILED,
        counts_as_attempt=False,
        error_message=(
            _(
                "The platform failed to run your code: %(reason)s (not your fault; no attempt "
                "was used). Please submit again; if it keeps failing, tell your instructor."
            )
            % {"reason": reason}
            if reason
            else _(
                "The platform failed to run your code (not your fault; no attempt was used). "
                "Please submit again; if it keeps failing, tell your instructor."
            )
        ),
        log_tail=log_tail,
    )
    return Submission.Status.FAILED

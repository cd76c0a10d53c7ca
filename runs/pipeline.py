"""The worker's run of one submission."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

import labs.training
from academy.deadlines import database_calls_bounded, database_deadline
from grading.services import submission_grade
from labs.models import Example, Lab, Submission
from labs.selectors import (
    stale_cutoff,
    submissions_fair_order,
)
from labs.services.submissions import queue_wake, submission_enqueue_on_commit, submission_finish

logger = logging.getLogger(__name__)
MAX_PLATFORM_RETRIES = 2
MAX_DELIVERIES = 3
LOSS_CURVE_POINTS = 240
PROGRESS_FLUSH_SECONDS = 1.0
CANCEL_CHECK_SECONDS = 2.0
DISK_FULL_BYTES = 64 * 1024 * 1024
# Fair queueing: runs started within this window count against a learner's turn.
# Candidates tried per wake-up when another worker wins the race for the first.
CLAIM_CANDIDATES = 5


def submission_claim(*, submission_id: int, worker: str) -> Submission | None:
    """queued → running, atomically. A second delivery of the same job finds nothing to claim."""
    now = timezone.now()
    claimed = Submission.objects.filter(pk=submission_id, status=Submission.Status.QUEUED).update(
        status=Submission.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker,
        deliveries=F("deliveries") + 1, step=0, total_steps=0, epoch=0, loss_curve=[],
        dev_curve=[], run_info={}, result={}, error_message="", learner_traceback="", log_tail="",
        counts_as_attempt=False, phase=Submission.Phase.TRAINING,
    )  # fmt: skip
    if not claimed:
        return None
    return Submission.objects.select_related("lab__dataset", "lab__module").get(pk=submission_id)


def submission_claim_next(*, queues: Sequence[str], worker: str) -> Submission | None:
    """Claim the fairest queued run of these queues, or None when none is waiting."""
    for _ in range(3):
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


def submissions_requeue_stale() -> list[int]:
    """Requeue running runs whose heartbeat stopped (their worker died). Returns their ids.

    Also makes up wake-ups a broker lost (a restart without persistence, the
    filesystem broker under a killed worker): a queue whose rows waited longer
    than the stale limit gets as many messages as it has rows and lacks.
    """
    # The sweep runs on a worker: a hung database must not hold that worker's slot.
    with database_calls_bounded():
        return _requeue_stale()


def _requeue_stale() -> list[int]:
    requeued = []
    for submission in Submission.objects.filter(
        status=Submission.Status.RUNNING, heartbeat_at__lt=stale_cutoff()
    ).select_related("lab"):
        if submission.deliveries >= MAX_DELIVERIES:
            submission_finish(submission, Submission.Status.FAILED, owner_check=False,
                    error_message=f"The run was interrupted {submission.deliveries} times by "
                    "worker failures. This is not your fault and did not use an attempt.")  # fmt: skip
            continue
        with database_deadline(), transaction.atomic():
            moved = Submission.objects.filter(
                pk=submission.pk, status=Submission.Status.RUNNING, heartbeat_at__lt=stale_cutoff()
            ).update(status=Submission.Status.QUEUED, worker="", counts_as_attempt=False)
            if moved:
                logger.warning("Requeued submission %s: heartbeat stopped", submission.pk)
                requeued.append(submission.pk)
                submission_enqueue_on_commit(submission)
    _wake_stranded()
    return requeued


def _wake_stranded() -> None:
    waiting = dict(
        Submission.objects.filter(status=Submission.Status.QUEUED)
        .order_by()
        .values("lab__queue")
        .annotate(n=Count("pk"))
        .values_list("lab__queue", "n")
    )
    old = set(
        Submission.objects.filter(status=Submission.Status.QUEUED, created_at__lt=stale_cutoff())
        .order_by()
        .values_list("lab__queue", flat=True)
        .distinct()
    )
    for queue in old:
        messages = _messages_waiting(queue)
        # A broker that cannot count: wake one worker per sweep rather than flood the queue.
        missing = 1 if messages is None else waiting.get(queue, 0) - messages
        if missing > 0:
            logger.warning("Queue %s: %s queued runs had no message; sent wake-ups", queue, missing)
            for _ in range(missing):
                queue_wake(queue=queue)


def _messages_waiting(queue: str) -> int | None:
    from kombu.exceptions import ChannelError

    from academy.celery import app

    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # Redis keeps no empty queue: nothing waits in it
        return 0
    except Exception:
        logger.exception("Could not count the messages of queue %s", queue)
        return None


def submission_run(*, submission_id: int, worker: str | None = None) -> str | None:
    """Claim and run one given submission (validate_lab's direct path). None if not claimable."""
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
    queue = Submission.objects.filter(pk=submission_id).values_list("lab__queue", flat=True).first()
    return queue or Lab.Queue.CPU


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


def _run_claimed(submission: Submission) -> str:
    """Run a claimed submission; every query on the way is bounded by the caller, so a
    database that hangs reads as one that went away (see _RunReporter)."""
    try:
        return _train(submission)
    except Exception:
        logger.exception("Platform fault running submission %s", submission.pk)
        try:
            return _platform_fault(submission, traceback.format_exc())
        except DatabaseError:
            # The database is out of reach as well: the row stays running, its heartbeat
            # ages, and the sweep requeues it once the database answers again.
            logger.exception("Submission %s: could not record the platform fault", submission.pk)
            return Submission.Status.RUNNING


def _platform_fault(submission: Submission, detail: str) -> str:
    """Our fault, not the learner's: retry a couple of times, never count an attempt."""
    if submission.platform_retries < MAX_PLATFORM_RETRIES:
        moved = Submission.objects.filter(
            pk=submission.pk, status=Submission.Status.RUNNING, deliveries=submission.deliveries
        ).update(status=Submission.Status.QUEUED, platform_retries=F("platform_retries") + 1,
                 counts_as_attempt=False, worker="")  # fmt: skip
        if moved:
            queue_wake(queue=submission.lab.queue, hint=submission.pk, countdown=5)
            return Submission.Status.QUEUED
    submission_finish(submission, Submission.Status.FAILED, counts_as_attempt=False,
            error_message="The platform failed to run your code (not your fault; no attempt "
            "was used). Please submit again; if it keeps failing, tell your instructor.",
            log_tail=detail[-4000:])  # fmt: skip
    return Submission.Status.FAILED


def job_dir_for(submission: Submission) -> Path:
    return Path(settings.ACADEMY_JOBS_DIR) / f"{submission.pk}"


def _write_job(submission: Submission, job_dir: Path) -> None:
    from labs.training.data import stratified_split, stratified_subset, write_csv
    from labs.training.spec import RunSpec

    lab = submission.lab
    if job_dir.exists():
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True, mode=0o700)
    rows = list(
        Example.objects.filter(dataset=lab.dataset, split=Example.Split.TRAIN)
        .order_by("position")
        .values_list("text", "label")
    )
    if lab.train_subset_size and lab.train_subset_size < len(rows):
        rows = stratified_subset(rows, lab.train_subset_size, lab.subset_seed)
    train, dev = stratified_split(rows, lab.dev_fraction, lab.subset_seed)
    write_csv(job_dir / "train.csv", train)
    write_csv(job_dir / "dev.csv", dev)
    (job_dir / "solution.py").write_text(submission.code, encoding="utf-8")
    RunSpec(
        base_model="/model", code_file="/job/solution.py", train_file="/job/train.csv",
        dev_file="/job/dev.csv", labels=list(lab.dataset.labels), output_dir="/job/checkpoint",
        max_epochs=lab.max_epochs, threads=settings.ACADEMY_TRAINING_THREADS,
        max_trainable_share=lab.max_trainable_share,
    ).to_json(job_dir / "spec.json")  # fmt: skip


@dataclass
class _RunReporter:
    """Turns the engine's JSON-lines events into throttled writes on the row."""

    submission: Submission
    pending: dict[str, Any] = field(default_factory=dict)
    loss_curve: list[list[float]] = field(default_factory=list)
    dev_curve: list[dict[str, Any]] = field(default_factory=list)
    started: bool = False
    learner_error: dict[str, Any] | None = None
    platform_error: dict[str, Any] | None = None
    done: dict[str, Any] | None = None
    last_flush: float = 0.0
    last_cancel_check: float = 0.0
    lost_ownership: bool = False
    database_down_since: float | None = None

    def handle_line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # not an event: ignore rather than trust
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "start":
            self.started = True
            self.pending.update(
                counts_as_attempt=True, device=str(event.get("device_name") or event.get("device", ""))[:100],
                total_steps=int(event.get("total_steps", 0)),
                run_info={k: event.get(k) for k in ("device", "device_name", "total_steps", "epochs",
                          "train_examples", "dev_examples", "trainable_params", "total_params",
                          "trainable_share", "hyperparameters")},
            )  # fmt: skip
            self.flush(force=True)
        elif kind == "step":
            self.loss_curve.append([int(event.get("step", 0)), float(event.get("loss", 0.0))])
            if len(self.loss_curve) > LOSS_CURVE_POINTS:
                self.loss_curve = self.loss_curve[::2]  # keep the shape, bound the size
            self.pending.update(
                step=int(event.get("step", 0)), epoch=float(event.get("epoch", 0.0)),
                samples_per_second=float(event.get("samples_per_s", 0.0)),
                loss_curve=list(self.loss_curve),
            )  # fmt: skip
            self.flush()
        elif kind == "epoch":
            self.dev_curve.append(
                {
                    k: event.get(k)
                    for k in ("epoch", "train_loss", "dev_loss", "dev_accuracy", "dev_macro_f1")
                }
            )
            self.pending.update(dev_curve=list(self.dev_curve))
            self.flush(force=True)
        elif kind == "learner_error":
            self.learner_error = event
        elif kind == "platform_error":
            self.platform_error = event
        elif kind == "done":
            self.done = event

    def flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.lost_ownership:
            # The run is someone else's, or presumed so: nothing more to write. (Trying
            # would also hold up the stop by a connection timeout per try.)
            return
        if not force and now - self.last_flush < PROGRESS_FLUSH_SECONDS:
            return
        self.pending["heartbeat_at"] = timezone.now()
        try:
            updated = Submission.objects.filter(
                pk=self.submission.pk, status=Submission.Status.RUNNING,
                deliveries=self.submission.deliveries,
            ).update(**self.pending)  # fmt: skip
        except DatabaseError as exc:
            self._database_unreachable(exc, now)
            return  # the pending progress goes with the next write
        if self.database_down_since is not None:
            logger.warning("Submission %s: the database is back", self.submission.pk)
            self.database_down_since = None
        self.lost_ownership = self.lost_ownership or not updated
        self.pending = {}
        self.last_flush = now

    def _database_unreachable(self, exc: DatabaseError, now: float) -> None:
        """A database restart, a network cut, or a call that hung past its deadline (its
        connection shut by academy.deadlines): train on and write the progress later.

        Past the stale limit the sweep may have requeued the run elsewhere, so it stops;
        before that, the first write that gets through finds out whether it still owns it."""
        connection.close()  # a broken connection is never reused: the next query reconnects
        self.last_flush = now
        if self.database_down_since is None:
            self.database_down_since = now
            logger.warning("Submission %s: database unreachable (%s)", self.submission.pk, exc)
        if now - self.database_down_since > settings.ACADEMY_STALE_RUN_SECONDS:
            logger.error("Submission %s: database gone too long; stopping", self.submission.pk)
            self.lost_ownership = True

    def should_stop(self) -> bool:
        """Polled by the sandbox: also the heartbeat while the engine is quiet."""
        if self.lost_ownership:
            return True
        now = time.monotonic()
        if now - self.last_flush >= settings.ACADEMY_HEARTBEAT_SECONDS:
            self.flush(force=True)
        if now - self.last_cancel_check >= CANCEL_CHECK_SECONDS:
            self.last_cancel_check = now
            try:
                cancel = Submission.objects.filter(pk=self.submission.pk).values_list(
                    "cancel_requested", flat=True
                )
                if cancel and cancel[0]:
                    return True
            except DatabaseError as exc:
                self._database_unreachable(exc, now)
        # Another worker took the run over (we were presumed dead): stop, write nothing more.
        return self.lost_ownership


def _train(submission: Submission) -> str:
    from labs.sandbox import Limits, SandboxMode, SandboxUnavailable, run_sandboxed
    from labs.training.base_models import resolve_base_model

    lab = submission.lab
    job_dir = job_dir_for(submission)
    _write_job(submission, job_dir)
    threads = settings.ACADEMY_TRAINING_THREADS
    limits = Limits(
        wall_seconds=lab.wall_time_seconds,
        cpu_seconds=lab.wall_time_seconds * max(1, threads) + 60,
        memory_mb=lab.memory_mb,
    )
    engine_dir = Path(labs.training.__file__).resolve().parent
    reporter = _RunReporter(submission)
    try:
        result = run_sandboxed(
            argv=[sys.executable, "-m", "labs.training", "--spec", "/job/spec.json"],
            job_dir=str(job_dir),
            ro_binds={
                str(engine_dir): "/code/labs/training",
                resolve_base_model(lab.base_model): "/model",
            },
            limits=limits,
            mode=SandboxMode(settings.ACADEMY_SANDBOX_MODE),
            env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
            cwd_inside="/code",
            on_stdout_line=reporter.handle_line,
            should_stop=reporter.should_stop,
        )
    except SandboxUnavailable as exc:
        submission_finish(submission, Submission.Status.FAILED, counts_as_attempt=False,
                error_message=f"This worker cannot run code safely: {exc} No attempt was used.")  # fmt: skip
        return Submission.Status.FAILED
    reporter.flush(force=True)
    if reporter.lost_ownership:
        return Submission.Status.RUNNING  # another worker owns the row now
    common = {"sandbox_mode": str(result.mode), "log_tail": _clean_log(result.stderr_tail)}
    if result.outcome == "cancelled":
        submission_finish(
            submission,
            Submission.Status.CANCELLED,
            error_message="You cancelled this run.",
            **common,
        )
        return Submission.Status.CANCELLED
    if result.outcome == "ok" and reporter.done is not None:
        reporter.pending.update(phase=Submission.Phase.GRADING, result=reporter.done,
                                samples_per_second=reporter.done.get("samples_per_s"), **common)  # fmt: skip
        reporter.flush(force=True)
        submission_grade(submission, job_dir, reporter.flush)  # throttled: also the heartbeat
        return Submission.objects.values_list("status", flat=True).get(pk=submission.pk)
    if reporter.platform_error is not None and _disk_nearly_full(job_dir):
        # The engine could not write the checkpoint because the worker's disk is full: our
        # fault, retried, never an attempt. (Checked on the host: the event alone is not proof.)
        return _platform_fault(
            submission,
            f"the job folder's disk is full: {reporter.platform_error.get('message', '')}\n"
            f"{result.stderr_tail}",
        )
    if reporter.learner_error is not None:
        submission_finish(submission, Submission.Status.ERROR, counts_as_attempt=True,
                error_message=str(reporter.learner_error.get("message", ""))[:2000],
                learner_traceback=str(reporter.learner_error.get("traceback", ""))[-8000:], **common)  # fmt: skip
        return Submission.Status.ERROR
    if result.outcome in {"timeout", "memory", "cpu", "output_limit"} or reporter.started:
        # A limit was hit, or the learner's code ended the process itself.
        submission_finish(submission, Submission.Status.ERROR, counts_as_attempt=True,
                error_message=result.detail or f"The run ended with status {result.returncode}.", **common)  # fmt: skip
        return Submission.Status.ERROR
    return _platform_fault(
        submission,
        f"engine exited {result.returncode} ({result.outcome}) before starting:\n{result.stderr_tail}",
    )


def _disk_nearly_full(path: Path) -> bool:
    usage = shutil.disk_usage(path)
    return usage.free < max(DISK_FULL_BYTES, usage.total // 50)


def _clean_log(text: str) -> str:
    """The learner's own output; host paths of the interpreter are not theirs to see."""
    for prefix in {sys.prefix, sys.base_prefix, str(settings.BASE_DIR)}:
        text = text.replace(prefix, "<python>")
    return text[-8000:]

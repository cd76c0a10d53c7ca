"""Writes for datasets, labs and submissions, and the worker-side run of a submission.

The path of a run: `submission_create` (web) validates and, on commit, sends a
wake-up to the lab's queue → a worker's `submission_run_next` claims the
fairest queued row of that queue (the learner with the fewest runs started
recently goes first, oldest first) with a conditional update, writes a job
folder (code, train and dev splits, a spec; never the held-out split), runs
the engine in the sandbox, streams progress into the row with a heartbeat, and
records the outcome. Messages carry no work of their own: the rows do, so a
duplicate delivery claims nothing twice and a lost message is made up by the
sweep. A run whose heartbeat stops is found by `submissions_requeue_stale` and
queued again, so a worker killed outright loses nothing whatever the broker.
"""

from __future__ import annotations

import ast
import datetime
import json
import logging
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from academy.deadlines import database_calls_bounded, database_deadline
from courses.importer import CourseFolderError, CourseSpec
from courses.models import Course, Module
from courses.rendering import render_markdown
from courses.services import ImportReport
from labs.datasets import DatasetError, ParsedDataset, parse_dataset
from labs.models import Dataset, Example, Lab, Submission
from labs.selectors import (
    attempts_reset_at,
    attempts_used_today,
    stale_cutoff,
    submissions_fair_order,
)

logger = logging.getLogger(__name__)

MAX_CODE_BYTES = 64 * 1024
MAX_PLATFORM_RETRIES = 2
MAX_DELIVERIES = 3
LOSS_CURVE_POINTS = 240
PROGRESS_FLUSH_SECONDS = 1.0
CANCEL_CHECK_SECONDS = 2.0
ENGINE_EXIT_LEARNER_ERROR = 3
ENGINE_EXIT_STOPPED = 4
ENGINE_EXIT_BAD_SPEC = 2
# The sandbox's wall limit plus grading must end before Celery's soft limit.
MAX_LAB_WALL_SECONDS = 2700
# Below this much free space (or 2%) a failed write in a job folder is the worker's fault.
DISK_FULL_BYTES = 64 * 1024 * 1024
# Fair queueing: runs started within this window count against a learner's turn.
# Candidates tried per wake-up when another worker wins the race for the first.
CLAIM_CANDIDATES = 5


class SubmissionRefused(Exception):
    """The submission was not accepted; the message tells the learner why."""


# After a successful training run, still on the same worker (the checkpoint is on
# its local disk) and while the row is still RUNNING with a heartbeat, the
# grading app scores it. labs must not import grading, so grading registers here.
PostTrainingHook = Callable[["Submission", Path, Callable[[], None]], None]
_post_training_hooks: list[PostTrainingHook] = []


def register_post_training(hook: PostTrainingHook) -> None:
    if hook not in _post_training_hooks:
        _post_training_hooks.append(hook)


# --------------------------------------------------------------------------
# Datasets


@transaction.atomic
def dataset_import(
    *, slug: str, title: str, license_name: str, source_markdown: str, parsed: ParsedDataset,
    description: str = "",
) -> tuple[Dataset, str]:  # fmt: skip
    """Create or replace a dataset's rows. Returns (dataset, "created" | "updated" | "unchanged")."""
    fields = {
        "title": title, "description": description, "license_name": license_name,
        "source_markdown": source_markdown, "source_html": render_markdown(source_markdown).html,
        "labels": parsed.labels,
    }  # fmt: skip
    dataset, created = Dataset.objects.get_or_create(slug=slug, defaults=fields)
    if not created and dataset.content_hash == parsed.content_hash:
        changed = any(getattr(dataset, k) != v for k, v in fields.items())
        if changed:
            Dataset.objects.filter(pk=dataset.pk).update(**fields)
        return dataset, "updated" if changed else "unchanged"
    for name, value in fields.items():
        setattr(dataset, name, value)
    dataset.content_hash = parsed.content_hash
    dataset.save()
    dataset.examples.all().delete()
    rows = [
        (dataset.pk, split, i, text, label)
        for split, split_rows in (
            (Example.Split.TRAIN, parsed.train),
            (Example.Split.HELDOUT, parsed.heldout),
        )
        for i, (text, label) in enumerate(split_rows)
    ]
    # executemany instead of bulk_create: datasets are tens of thousands of rows and
    # the ORM's per-object SQL compilation made a course import take ~20 s on SQLite.
    table = Example._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (dataset_id, split, position, text, label) VALUES (%s, %s, %s, %s, %s)",  # noqa: S608
            rows,
        )
    return dataset, "created" if created else "updated"


def dataset_import_folder(*, path: Path) -> tuple[Dataset, str]:
    """Import `path/{dataset.yaml, train.csv, test.csv, SOURCE.md}`."""
    import yaml

    meta_path = path / "dataset.yaml"
    if not meta_path.is_file():
        raise DatasetError(f"{path}: dataset.yaml is missing")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
    missing = [k for k in ("slug", "title", "license") if k not in meta]
    if missing:
        raise DatasetError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    for name in ("train.csv", "test.csv", "SOURCE.md"):
        if not (path / name).is_file():
            raise DatasetError(f"{path}: {name} is missing")
    parsed = parse_dataset(
        train=(path / "train.csv").read_bytes(), heldout=(path / "test.csv").read_bytes(),
        train_name=str(path / "train.csv"), heldout_name=str(path / "test.csv"),
    )  # fmt: skip
    return dataset_import(
        slug=meta["slug"], title=meta["title"], license_name=meta["license"],
        description=str(meta.get("description", "")).strip(),
        source_markdown=(path / "SOURCE.md").read_text(encoding="utf-8"), parsed=parsed,
    )  # fmt: skip


# --------------------------------------------------------------------------
# Labs (course-as-code: the `lab:` section of a lab module's front matter)

LAB_KEYS = {
    "dataset", "train_subset", "subset_seed", "dev_fraction", "base_model", "starter", "solution",
    "hooks", "limits", "attempts_per_day", "queue", "grading",
}  # fmt: skip
LIMIT_KEYS = {"wall_seconds", "memory_mb", "max_epochs", "max_trainable_share"}
HOOKS = {"preprocess", "prepare_model", "build_optimizer", "build_scheduler", "training_step"}


def course_import_labs(spec: CourseSpec, course: Course, report: ImportReport) -> None:
    """Course-import extension: datasets from `datasets/`, then each module's `lab:` section."""
    datasets_dir = spec.root / "datasets"
    for folder in (
        sorted(p for p in datasets_dir.glob("*") if p.is_dir()) if datasets_dir.is_dir() else []
    ):
        try:
            dataset, outcome = dataset_import_folder(path=folder)
        except DatasetError as exc:
            raise CourseFolderError(folder, str(exc)) from None
        getattr(report, outcome).append(f"dataset {dataset.slug}")
    for module_spec in spec.modules:
        section = module_spec.extensions.get("lab")
        if section is None:
            continue
        path = spec.root / module_spec.source_path
        module = Module.objects.get(course=course, slug=module_spec.slug)
        if module.kind != Module.Kind.LAB:
            raise CourseFolderError(
                path, "a 'lab:' section is only allowed on a module of kind lab"
            )
        fields = lab_fields_from_section(section, path=path)
        lab, created = Lab.objects.get_or_create(module=module, defaults=fields)
        if not created:
            changed = [k for k, v in fields.items() if getattr(lab, k) != v]
            if changed:
                Lab.objects.filter(pk=lab.pk).update(**fields)
                report.updated.append(f"lab {module.slug}")
        else:
            report.created.append(f"lab {module.slug}")


def lab_fields_from_section(section: Any, *, path: Path) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise CourseFolderError(path, "'lab:' must be a mapping")
    unknown = sorted(set(section) - LAB_KEYS)
    if unknown:
        raise CourseFolderError(path, f"unknown lab key(s): {', '.join(unknown)}")
    for key in ("dataset", "starter", "solution", "grading"):
        if key not in section:
            raise CourseFolderError(path, f"lab section is missing '{key}'")
    try:
        dataset = Dataset.objects.get(slug=section["dataset"])
    except Dataset.DoesNotExist:
        raise CourseFolderError(
            path, f"lab dataset '{section['dataset']}' is not in datasets/"
        ) from None
    code = {}
    for key in ("starter", "solution"):
        code_path = path.parent / section[key]
        if not code_path.is_file():
            raise CourseFolderError(
                path, f"lab {key} file {section[key]} not found next to the module"
            )
        code[key] = code_path.read_text(encoding="utf-8")
        try:
            ast.parse(code[key])
        except SyntaxError as exc:
            raise CourseFolderError(
                code_path, f"syntax error: {exc.msg}", line=exc.lineno
            ) from None
    hooks = list(section.get("hooks", []))
    if set(hooks) - HOOKS:
        raise CourseFolderError(path, f"unknown hook(s): {', '.join(sorted(set(hooks) - HOOKS))}")
    limits = section.get("limits", {}) or {}
    if not isinstance(limits, dict) or set(limits) - LIMIT_KEYS:
        raise CourseFolderError(
            path, f"lab limits must be a mapping with keys among {', '.join(sorted(LIMIT_KEYS))}"
        )
    grading = section["grading"]
    fields = {
        "dataset": dataset,
        "train_subset_size": section.get("train_subset"),
        "subset_seed": section.get("subset_seed", 13),
        "dev_fraction": section.get("dev_fraction", 0.1),
        "base_model": section.get("base_model", "minilm-l6"),
        "starter_code": code["starter"],
        "reference_solution": code["solution"],
        "required_hooks": hooks,
        "wall_time_seconds": limits.get("wall_seconds", 600),
        "memory_mb": limits.get("memory_mb", 6144),
        "max_trainable_share": limits.get("max_trainable_share"),
        "max_epochs": limits.get("max_epochs", 5),
        "attempts_per_day": section.get("attempts_per_day", 10),
        "queue": section.get("queue", Lab.Queue.CPU),
        "metric": grading.get("metric", Lab.Metric.ACCURACY),
        "metric_label": grading.get("metric_label", ""),
        "baseline": grading.get("baseline"),
        "target": grading.get("target"),
        "pass_mark": grading.get("pass_mark", 60),
    }
    lab = Lab(module=Module(), **fields)
    try:
        lab.clean_fields(exclude=["module"])
        lab.clean()
    except Exception as exc:  # ValidationError: flatten to one sentence naming the file
        messages = getattr(exc, "message_dict", None) or {"lab": [str(exc)]}
        raise CourseFolderError(
            path, "; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
        ) from None
    if fields["wall_time_seconds"] > MAX_LAB_WALL_SECONDS:
        raise CourseFolderError(path, f"wall_seconds must be at most {MAX_LAB_WALL_SECONDS}")
    return fields


# --------------------------------------------------------------------------
# Submissions (web side)


def submission_create(*, learner: AbstractBaseUser, lab: Lab, code: str) -> Submission:
    """Validate and queue a learner's run. Raises SubmissionRefused with a learner-facing message."""
    if len(code.encode()) > MAX_CODE_BYTES:
        raise SubmissionRefused(f"Your code is larger than {MAX_CODE_BYTES // 1024} KB.")
    if not code.strip():
        raise SubmissionRefused("Your code is empty.")
    try:
        ast.parse(code, filename="solution.py")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        raise SubmissionRefused(f"Syntax error on {where}: {exc.msg}. Nothing was run.") from None
    with transaction.atomic():
        # Lock the lab row so two simultaneous submits are counted one after the other.
        Lab.objects.select_for_update().filter(pk=lab.pk).first()
        if Submission.objects.filter(
            learner=learner, lab=lab, status__in=Submission.ACTIVE, validation_of=""
        ).exists():
            raise SubmissionRefused(
                "You already have a run in progress for this lab; wait or cancel it."
            )
        if attempts_used_today(learner=learner, lab=lab) >= lab.attempts_per_day:
            reset = timezone.localtime(attempts_reset_at()).strftime("%H:%M")
            raise SubmissionRefused(
                f"You have used all {lab.attempts_per_day} attempts for today; they reset at {reset}."
            )
        try:
            with transaction.atomic():
                submission = Submission.objects.create(learner=learner, lab=lab, code=code)
        except IntegrityError:
            raise SubmissionRefused("You already have a run in progress for this lab.") from None
        _enqueue_on_commit(submission)
    return submission


def _enqueue_on_commit(submission: Submission) -> None:
    queue = submission.lab.queue
    transaction.on_commit(lambda: _wake(queue=queue, hint=submission.pk))


def _wake(*, queue: str, hint: int | None = None, countdown: float | None = None) -> None:
    """One wake-up message per queued row: whichever worker takes it claims the fairest row."""
    from labs.tasks import run_submission

    run_submission.apply_async(
        kwargs={"submission_id": hint, "queue": queue}, queue=queue, countdown=countdown
    )


def submission_cancel(*, submission: Submission) -> Submission:
    """Cancel now if still queued; a running run is stopped by its worker within seconds."""
    cancelled_while_queued = Submission.objects.filter(
        pk=submission.pk, status=Submission.Status.QUEUED
    ).update(status=Submission.Status.CANCELLED, finished_at=timezone.now(), cancel_requested=True)
    if not cancelled_while_queued:
        Submission.objects.filter(pk=submission.pk, status=Submission.Status.RUNNING).update(
            cancel_requested=True
        )
    submission.refresh_from_db()
    return submission


# --------------------------------------------------------------------------
# Submissions (worker side)


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
                _enqueue_on_commit(submission)
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
                _wake(queue=queue)


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
            _wake(queue=submission.lab.queue, hint=submission.pk, countdown=5)
            return Submission.Status.QUEUED
    submission_finish(submission, Submission.Status.FAILED, counts_as_attempt=False,
            error_message="The platform failed to run your code (not your fault; no attempt "
            "was used). Please submit again; if it keeps failing, tell your instructor.",
            log_tail=detail[-4000:])  # fmt: skip
    return Submission.Status.FAILED


def submission_finish(
    submission: Submission, status: str, *, owner_check: bool = True, **fields: Any
) -> bool:
    """Write a final state, only if this worker still owns the run."""
    rows = Submission.objects.filter(pk=submission.pk, status=Submission.Status.RUNNING)
    if owner_check:
        rows = rows.filter(deliveries=submission.deliveries)
    return bool(rows.update(status=status, finished_at=timezone.now(), **fields))


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
    engine_dir = Path(__file__).resolve().parent / "training"
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
        if not _post_training_hooks:
            submission_finish(submission, Submission.Status.TRAINED, result=reporter.done,
                    samples_per_second=reporter.done.get("samples_per_s"), **common)  # fmt: skip
            return Submission.Status.TRAINED
        reporter.pending.update(phase=Submission.Phase.GRADING, result=reporter.done,
                                samples_per_second=reporter.done.get("samples_per_s"), **common)  # fmt: skip
        reporter.flush(force=True)
        for hook in _post_training_hooks:
            hook(submission, job_dir, reporter.flush)  # throttled: also the heartbeat
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


def submission_delete_job(*, submission: Submission) -> None:
    shutil.rmtree(job_dir_for(submission), ignore_errors=True)


def runs_elapsed(submission: Submission) -> datetime.timedelta | None:
    if not submission.started_at:
        return None
    return (submission.finished_at or timezone.now()) - submission.started_at


def lab_validate_enqueue(*, lab: Lab, by: AbstractBaseUser) -> list[Submission]:
    """Queue the reference solution and the unmodified starter code through the real pipeline."""
    with transaction.atomic():
        runs = [
            Submission.objects.create(learner=by, lab=lab, code=code, validation_of=role)
            for role, code in (("reference", lab.reference_solution), ("starter", lab.starter_code))
        ]
        for run in runs:
            _enqueue_on_commit(run)
    return runs

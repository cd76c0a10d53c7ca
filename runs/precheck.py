"""A precheck on a worker, top to bottom: the learner's code against the contract in seconds.

    message on the `precheck` queue (runs/tasks.py)
      → claim the row                      labs.services.queries.query_claim
      → write a folder                     the code, the lab's train and dev rows, the real
                                           run's spec, the lab's required hooks
      → run the engine in the sandbox      `python -m labs.training --precheck /job`, on a
                                           tiny BERT shaped like the lab's base model (built
                                           once per worker, never downloaded) and the base
                                           model itself (for the trainable share)
      → read report.json back              bounded, without following links
      → finish the row                     done (the report) or failed (our fault)

A precheck uses no attempt and writes no grade: whatever the learner's code does, the row
ends `done` with what the engine saw, or `failed` when the platform could not run it.
Its folder is removed at the end; nothing is retried (the learner asks again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

import sandbox
from labs.models import Precheck
from labs.services.queries import query_claim
from labs.training.base_models import resolve_base_model
from labs.training.data import write_csv
from labs.training.precheck import CODE_FILE, INPUT_FILE, MAX_REPORT_BYTES, REPORT_FILE
from labs.training.serving import LOADING_CODE_EVENT
from runs.jobs import (
    JOB_MOUNT,
    MODEL_MOUNT,
    engine_argv,
    engine_policy,
    learner_log,
    run_spec,
    training_rows,
)
from runs.reporter import parse_event
from sandbox import SandboxError, UnsafeJobFile

logger = logging.getLogger(__name__)

PRECHECK_DIR = "precheck"  # under ACADEMY_JOBS_DIR: never a digit, so never pruned as a run
TINY_DIR = "tiny-models"
TINY_MOUNT = "/tiny"
# A precheck reports within seconds; one that needs longer has code that hangs.
MAX_PRECHECK_SECONDS = 60


def precheck_run(*, precheck_id: int) -> str | None:
    """Run one queued precheck; its final status, or None when it was not claimable."""
    if not query_claim(Precheck, pk=precheck_id):
        logger.info("Precheck %s not claimable (taken, finished or given up)", precheck_id)
        return None
    precheck = Precheck.objects.select_related("lab__dataset").get(pk=precheck_id)
    lab = precheck.lab
    root = Path(settings.ACADEMY_JOBS_DIR) / PRECHECK_DIR
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(prefix=f"{precheck.pk}-", dir=root))
    try:
        base = resolve_base_model(lab.base_model)
        tiny = tiny_model_for(base)
        _write_folder(precheck, folder)
        loading = _LoadingCode()
        result = sandbox.run(
            engine_policy(
                lab,
                folder,
                wall_seconds=min(lab.wall_time_seconds, MAX_PRECHECK_SECONDS),
                ro_binds={base: MODEL_MOUNT, tiny: TINY_MOUNT},
            ),
            argv=engine_argv("--precheck", JOB_MOUNT),
            on_stdout_line=loading.see,
        )
        report = _report(folder)
    except (SandboxError, OSError, ValueError) as exc:
        logger.exception("Precheck %s: platform fault", precheck.pk)
        return _finish(precheck, Precheck.Status.FAILED, error_message=_platform(exc))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log_tail = learner_log(result.stderr_tail, lab)
    if report is None:
        if not loading.seen:
            logger.error("Precheck %s ended before loading code: %s", precheck.pk, log_tail)
            return _finish(precheck, Precheck.Status.FAILED, error_message=_platform(None))
        # Their code ended the process (an exit, a limit, a hang): that is the finding.
        report = {"checks": [{"name": "your code", "status": "error", "message": result.detail}]}
    return _finish(precheck, Precheck.Status.DONE, report=report, log_tail=log_tail)


def _write_folder(precheck: Precheck, folder: Path) -> None:
    lab = precheck.lab
    train, dev = training_rows(lab)
    write_csv(folder / "train.csv", train)
    write_csv(folder / "dev.csv", dev)
    (folder / CODE_FILE).write_text(precheck.code, encoding="utf-8")
    given = {
        "run": run_spec(lab).to_dict(),
        "tiny_model": TINY_MOUNT,
        "required_hooks": list(lab.required_hooks),
    }
    (folder / INPUT_FILE).write_text(json.dumps(given), encoding="utf-8")


def tiny_model_for(base_model: str) -> str:
    """A tiny random BERT shaped like `base_model` (labs.training.tiny), made once per worker
    and base model, from the base model's own tokenizer files: nothing is downloaded."""
    from labs.training.tiny import make_tiny_bert_like

    key = hashlib.sha256(str(Path(base_model).resolve()).encode()).hexdigest()[:16]
    root = Path(settings.ACADEMY_JOBS_DIR) / TINY_DIR
    path = root / key
    if (path / "model.safetensors").is_file():
        return str(path)
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))
    make_tiny_bert_like(base_model, building)
    # The sandbox reads it as an unprivileged user, like a model in site-packages.
    for item in [root, building, *building.iterdir()]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    try:
        building.rename(path)  # atomic: a second worker building it too loses the race
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
    return str(path)


class _LoadingCode:
    def __init__(self) -> None:
        self.seen = False

    def see(self, line: str) -> None:
        self.seen = self.seen or parse_event(line) == LOADING_CODE_EVENT


def _report(folder: Path) -> dict[str, Any] | None:
    """report.json as the untrusted file it is, or None when there is none to read."""
    try:
        data = sandbox.open_job_file(str(folder), REPORT_FILE, max_bytes=MAX_REPORT_BYTES)
        report = json.loads(data.decode("utf-8"))
    except (FileNotFoundError, UnsafeJobFile, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("checks"), list):
        return None
    return report


def _platform(exc: Exception | None) -> str:
    return (
        "The platform could not run the precheck (not your code's fault). Try again; if it "
        "keeps failing, tell your instructor." + (f" ({type(exc).__name__})" if exc else "")
    )


def _finish(precheck: Precheck, status: str, **fields: Any) -> str:
    Precheck.objects.filter(pk=precheck.pk).update(
        status=status, finished_at=timezone.now(), **fields
    )
    return status

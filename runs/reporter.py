"""The engine's progress events, written onto the run's row: throttled, and the heartbeat."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, connection
from django.utils import timezone

from labs.models import Submission
from labs.training.events import (
    ANALYSIS_CONFUSIONS,
    ANALYSIS_MISTAKES,
    ANALYSIS_TEXT_CHARS,
    CODE_IMPORTED,
    EVENTS,
    LOADING_CODE,
)

logger = logging.getLogger(__name__)

LOSS_CURVE_POINTS = 240
PROGRESS_FLUSH_SECONDS = 1.0
CANCEL_CHECK_SECONDS = 2.0
EPOCH_EVENT_KEYS = ("epoch", "train_loss", "dev_loss", "dev_accuracy", "dev_macro_f1")
# Bounds on what an event may carry into the row: the engine never comes near them, and
# a program that writes its own events (it shares the process) cannot bloat the row.
MAX_EPOCH_EVENTS = 200
MAX_COUNT = 2**31 - 1  # the columns are 32-bit on every database
MAX_STRING = 4000
MAX_ITEMS = 100
MAX_DEPTH = 4
MAX_WARNINGS = 20
MAX_WARNING_CHARS = 300
START_EVENT_KEYS = (
    "device",
    "device_name",
    "total_steps",
    "epochs",
    "train_examples",
    "dev_examples",
    "trainable_params",
    "total_params",
    "trainable_share",
    "hyperparameters",
)


@dataclass
class RunReporter:
    """Turns the engine's JSON-lines events into throttled writes on the row.

    Its `flush` is also the run's heartbeat, and `should_stop` (polled by the
    sandbox) checks for a cancel and for a lost claim: a worker presumed dead
    whose run was requeued elsewhere stops and writes nothing more.
    """

    submission: Submission
    pending: dict[str, Any] = field(default_factory=dict)
    loss_curve: list[list[float]] = field(default_factory=list)
    dev_curve: list[dict[str, Any]] = field(default_factory=list)
    # The engine is about to import the learner's code: from here on, the event channel
    # is shared with it (labs/training/events.py).
    code_loaded: bool = False
    # Why the channel cannot be the engine's alone any more: set once, and the run stops.
    tampered: str | None = None
    learner_error: dict[str, Any] | None = None
    platform_error: dict[str, Any] | None = None
    spec_error: dict[str, Any] | None = None
    done: dict[str, Any] | None = None
    last_flush: float = 0.0
    last_cancel_check: float = 0.0
    lost_ownership: bool = False
    database_down_since: float | None = None
    # What the start event said about the run (shown on the run page as the engine's report).
    run_info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    samples_per_second: float | None = None

    def handle_line(self, line: str) -> None:
        event = parse_event(line)
        kind = event.get("event") if event is not None else None
        if event is None or kind not in EVENTS:
            if self.code_loaded:
                # The engine writes only its own events: this line is the learner's code.
                self.tampered = (
                    self.tampered or f"a line that is not an engine event: {line[:80]!r}"
                )
            else:
                logger.warning(
                    "Submission %s: not an engine event: %.200r", self.submission.pk, line
                )
            return
        if kind == LOADING_CODE:
            # The attempt is counted here, before a line of the learner's runs: nothing
            # their code does later (suppress the start event, forge a done) can undo it.
            self.code_loaded = True
            self.pending.update(counts_as_attempt=True)
            self.flush(force=True)
        elif kind == CODE_IMPORTED:
            # Only the run panel's phase ("your hooks are running"); the start event's
            # run_info replaces it.
            self.run_info["code_imported"] = True
            self.pending.update(run_info=dict(self.run_info))
            self.flush(force=True)
        elif kind == "start":
            self.run_info = {k: event.get(k) for k in START_EVENT_KEYS}
            self.run_info["warnings"] = self.warnings
            self.pending.update(
                device=str(event.get("device_name") or event.get("device") or "")[:100],
                total_steps=_count(event.get("total_steps")) or 0,
                run_info=self.run_info,
            )
            self.flush(force=True)
        elif kind == "step":
            step, loss = _count(event.get("step")), _number(event.get("loss"))
            if step is None or loss is None:
                return  # a step the engine cannot have sent: dropped, the run goes on
            self.loss_curve.append([step, loss])
            if len(self.loss_curve) > LOSS_CURVE_POINTS:
                self.loss_curve = self.loss_curve[::2]  # keep the shape, bound the size
            self.pending.update(
                step=step,
                epoch=_number(event.get("epoch")) or 0.0,
                samples_per_second=_number(event.get("samples_per_s")) or 0.0,
                loss_curve=list(self.loss_curve),
            )
            self.flush()
        elif kind == "epoch":
            if len(self.dev_curve) >= MAX_EPOCH_EVENTS or _number(event.get("epoch")) is None:
                return
            self.dev_curve.append({k: _number(event.get(k)) for k in EPOCH_EVENT_KEYS})
            self.pending.update(dev_curve=list(self.dev_curve))
            self.flush(force=True)
        elif kind == "warning":
            # The engine's notes on the learner's code (a capped hyperparameter, a misspelt
            # hook): shown on the run panel, as many as fit.
            message = event.get("message")
            if isinstance(message, str) and len(self.warnings) < MAX_WARNINGS:
                self.warnings.append(message[:MAX_WARNING_CHARS])
                self.run_info["warnings"] = self.warnings
                self.pending.update(run_info=self.run_info)
        elif kind == "after_training":
            # Dev metrics of the model the learner's after_training hook changed.
            self.run_info["after_training"] = {
                k: _number(event.get(k)) for k in EPOCH_EVENT_KEYS[2:]
            }
            self.pending.update(run_info=self.run_info)
        elif kind == "dev_analysis":
            # Shown on the result panel as the run's own report; held to the engine's bounds.
            analysis = dev_analysis_checked(event, labels=self.submission.lab.dataset.labels)
            if analysis is not None:
                self.run_info["dev_analysis"] = analysis
                self.pending.update(run_info=self.run_info)
        elif kind == "learner_error":
            self.learner_error = event
        elif kind == "platform_error":
            self.platform_error = event
        elif kind == "spec_error":
            self.spec_error = event
        elif kind == "done":
            self.done = event
            self.samples_per_second = _number(event.get("samples_per_s"))

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
                pk=self.submission.pk,
                status=Submission.Status.RUNNING,
                deliveries=self.submission.deliveries,
            ).update(**self.pending)
        except (DataError, IntegrityError):
            # A value the columns refuse is not an outage: drop this progress, keep the run.
            logger.exception("Submission %s: progress write refused", self.submission.pk)
            self.pending = {}
            return
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
        if self.lost_ownership or self.tampered:
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


def dev_analysis_checked(event: dict[str, Any], *, labels: Sequence[str]) -> dict[str, Any] | None:
    """A `dev_analysis` event as it may be stored: at most ANALYSIS_MISTAKES mistakes and
    ANALYSIS_CONFUSIONS pairs, texts cut to ANALYSIS_TEXT_CHARS, both labels of each entry
    among the lab's and different, a confidence in [0, 1], a loss and counts finite and not
    negative. Entries that break a rule are dropped; None when the event holds no valid
    entry. The engine never breaks them: this is what a forged event can put on the page."""
    known = set(labels)
    examples = _count(event.get("dev_examples"))

    def pair_ok(entry: Any) -> bool:
        return (
            isinstance(entry, dict)
            and entry.get("label") in known
            and entry.get("predicted") in known
            and entry.get("label") != entry.get("predicted")
        )

    mistakes = []
    for entry in _list(event.get("mistakes")):
        if not pair_ok(entry) or not isinstance(entry.get("text"), str):
            continue
        confidence, loss = _number(entry.get("confidence")), _number(entry.get("loss"))
        if confidence is None or not 0 <= confidence <= 1 or loss is None or loss < 0:
            continue
        mistakes.append(
            {
                "text": entry["text"][:ANALYSIS_TEXT_CHARS],
                "label": entry["label"],
                "predicted": entry["predicted"],
                "confidence": confidence,
                "loss": loss,
            }
        )
    confusions = []
    for entry in _list(event.get("confusions")):
        if not pair_ok(entry) or not isinstance(entry.get("example"), str):
            continue
        count = _count(entry.get("count"))
        if not count:
            continue
        if examples is not None and count > examples:
            continue
        confusions.append(
            {
                "label": entry["label"],
                "predicted": entry["predicted"],
                "count": count,
                "example": entry["example"][:ANALYSIS_TEXT_CHARS],
            }
        )
    if not mistakes and not confusions:
        return None
    wrong = _count(event.get("dev_mistakes"))
    return {
        "dev_examples": examples,
        "dev_mistakes": wrong
        if wrong is not None and (examples is None or wrong <= examples)
        else None,
        "mistakes": mistakes[:ANALYSIS_MISTAKES],
        "confusions": confusions[:ANALYSIS_CONFUSIONS],
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_event(line: str) -> dict[str, Any] | None:
    """One JSON-lines event, made safe to store: NaN and ±inf become None, strings, lists
    and mappings are bounded, and nesting is shallow. None if the line is not an event."""
    try:
        # parse_constant: NaN and Infinity literals; a float that overflows is caught below.
        event = json.loads(line, parse_constant=lambda _: None)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    bounded = _bounded(event, depth=0)
    return bounded if isinstance(bounded, dict) else None


def _bounded(value: Any, *, depth: int) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_STRING]
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, list):
        return [_bounded(v, depth=depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        return {str(k)[:100]: _bounded(v, depth=depth + 1) for k, v in items}
    return None


def _count(value: Any) -> int | None:
    """A step or step total: a whole number the columns hold, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value) if 0 <= value <= MAX_COUNT else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None

"""The precheck: the learner's code against the contract in seconds, before a real run.

`python -m labs.training --precheck FOLDER` runs in the sandbox on a folder the worker
writes (runs/precheck.py):

    solution.py    the learner's code
    train.csv      the training rows the real run would train on (its subset, not the dev rows)
    dev.csv        its dev rows
    precheck.json  {"run": the real run's RunSpec, "tiny_model": a folder,
                    "required_hooks": [...]}

and writes `report.json`. Nothing is trained for real: each hook the code defines is
called once (or, for `training_step`, for two steps) on a tiny random BERT shaped like
the lab's base model (its tokenizer, its layer and head counts; see `tiny`), through the
same `LearnerCode.call` and engine functions a real run uses, so a result is checked by
the one set of rules (`contract`), and an error names the hook and the line as a run's
would. Besides, it reports what a run's log shows only late or never:

- the token lengths of the training texts after `preprocess`, against `max_length`;
- the trainable share after `prepare_model`, measured on the lab's real base model
  (a tiny model's share says nothing: its embeddings are most of it);
- the learning rate `build_scheduler` (or the default) gives at each step of the
  real run's step count.

The learner's code shares this process and could write the report itself; it is only
ever shown to its author, and the worker bounds and checks its shape.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labs.training.contract import (
    HOOKS,
    LearnerCode,
    LearnerCodeError,
    load_learner_code,
    preprocess_texts,
    resolve_hyperparameters,
)
from labs.training.data import read_csv
from labs.training.spec import RunSpec, SpecError

CODE_FILE = "solution.py"
INPUT_FILE = "precheck.json"
REPORT_FILE = "report.json"
MAX_REPORT_BYTES = 256 * 1024
# Rows the tiny model trains on, and its steps: enough for a batch of each shape.
SAMPLE_ROWS = 32
SAMPLE_BATCH = 16
STEPS = 2
# Points kept of the schedule (the chart's resolution) and steps of it walked at most.
SCHEDULE_POINTS = 200
MAX_SCHEDULE_STEPS = 100_000
HISTOGRAM_BINS = 12

OK, ERROR, SKIPPED, MISSING, DEFAULT = "ok", "error", "skipped", "missing", "default"


@dataclass(frozen=True)
class PrecheckInput:
    run: RunSpec
    tiny_model: str
    required_hooks: list[str]

    @classmethod
    def from_json(cls, path: Path) -> PrecheckInput:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                run=RunSpec.from_dict(data["run"]),
                tiny_model=str(data["tiny_model"]),
                required_hooks=[str(hook) for hook in data.get("required_hooks", [])],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpecError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


class _Report:
    """The report as it grows: one entry per check, in the order they ran."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"checks": [], "warnings": []}
        self.started = time.perf_counter()

    def check(self, name: str, status: str, message: str = "", traceback: str = "") -> None:
        entry = {"name": name, "status": status, "message": message}
        if traceback:
            entry["traceback"] = traceback[-4000:]
        self.data["checks"].append(entry)

    def named(self, name: str) -> bool:
        return any(check["name"] == name for check in self.data["checks"])

    def failed(self, name: str, exc: LearnerCodeError) -> None:
        self.check(name, ERROR, exc.message, exc.learner_traceback)

    def write(self, folder: Path) -> dict[str, Any]:
        self.data["seconds"] = round(time.perf_counter() - self.started, 2)
        # The process's CPU time since it started, imports included: with one thread, what
        # its wall time is on a machine with nothing else to run.
        self.data["cpu_seconds"] = round(time.process_time(), 2)
        (folder / REPORT_FILE).write_text(json.dumps(self.data), encoding="utf-8")
        return self.data


def run_precheck(folder: str | Path, *, on_loading_code: Callable[[], None]) -> dict[str, Any]:
    """Check the learner's code in `folder` and write `report.json` (returned too).

    Raises SpecError (before `on_loading_code`) when the folder is not what the worker
    writes. The learner's failures are the report's content, never an exception."""
    folder = Path(folder)
    given = PrecheckInput.from_json(folder / INPUT_FILE)
    if not (folder / CODE_FILE).is_file():
        raise SpecError(f"{folder / CODE_FILE} does not exist.")
    report = _Report()
    on_loading_code()  # from here on the learner's code runs
    try:
        learner = load_learner_code(folder / CODE_FILE)
    except LearnerCodeError as exc:
        report.failed("import", exc)
        return report.write(folder)
    report.check("import", OK, "Your file imports.")
    report.data["warnings"].extend(learner.warnings)
    for hook in given.required_hooks:
        if not learner.has(hook):
            report.check(hook, MISSING, f"This lab asks you to write {hook}(); it is not defined.")
    try:
        hp, cap_warnings = resolve_hyperparameters(learner.raw_hyperparameters, given.run)
    except LearnerCodeError as exc:
        report.failed("HYPERPARAMETERS", exc)
        return report.write(folder)
    report.check("HYPERPARAMETERS", OK, "Valid.")
    report.data["warnings"].extend(cap_warnings)
    report.data["hyperparameters"] = hp
    try:
        _exercise(learner, hp, given, folder, report)
    except LearnerCodeError as exc:  # a check that has no hook of its own to blame
        report.failed("your code", exc)
    return report.write(folder)


def _exercise(
    learner: LearnerCode, hp: dict[str, Any], given: PrecheckInput, folder: Path, report: _Report
) -> None:
    """Each hook once, in the order a run calls them; a failed one skips what needs it."""
    import torch

    from labs.training import engine

    engine.seed_everything(hp["seed"])
    engine.set_threads(given.run.threads)
    device = torch.device("cpu")
    tokenizer = engine.load_tokenizer(given.tiny_model)
    rows = read_csv(folder / "train.csv")
    train_texts = _hooked(
        report, learner, "preprocess", preprocess_texts, learner, [t for t, _ in rows]
    )
    if train_texts is None:
        _skip(report, learner, "preprocess", [h for h in HOOKS if h != "preprocess"])
        return
    report.data["lengths"] = token_lengths(tokenizer, train_texts, hp["max_length"])

    tiny_spec = _tiny_spec(given.run, given.tiny_model)
    built = _hooked(
        report, learner, "prepare_model", engine.build_model, tiny_spec, learner, device
    )
    if built is None:
        _skip(
            report,
            learner,
            "prepare_model",
            [h for h in HOOKS if h not in ("preprocess", "prepare_model")],
        )
        return
    model, base_shapes = built
    report.data["trainable"] = trainable_on_base(given.run, learner)
    steps_per_epoch = math.ceil(len(rows) / hp["batch_size"])
    total_steps = steps_per_epoch * hp["epochs"]
    optimizer = _hooked(
        report, learner, "build_optimizer", engine.build_optimizer, model, hp, learner
    )
    if optimizer is None:
        _skip(
            report,
            learner,
            "build_optimizer",
            ["build_scheduler", "training_step", "after_training"],
        )
        return
    scheduler = _hooked(
        report,
        learner,
        "build_scheduler",
        engine.build_scheduler,
        optimizer,
        total_steps,
        hp,
        learner,
    )
    if scheduler is None:
        _skip(report, learner, "build_scheduler", ["training_step", "after_training"])
        return
    run = engine._Run(
        spec=tiny_spec,
        hp={**hp, "batch_size": min(hp["batch_size"], SAMPLE_BATCH)},
        learner=learner,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        device=device,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        on_event=lambda event: None,
        should_stop=lambda: False,
        base_shapes=base_shapes,
    )
    run.pad_id = tokenizer.pad_token_id or 0
    lrs = [_lr(optimizer)]
    sample = _encode_sample(rows, train_texts, tokenizer, tiny_spec.labels, hp["max_length"])
    stepped = _hooked(report, learner, "training_step", _train_steps, run, sample, lrs)
    if stepped is None:
        _skip(report, learner, "training_step", ["after_training"])
        report.data["schedule"] = {"total_steps": total_steps, "points": [], "walked": 0}
        return
    try:
        report.data["schedule"] = _walk_schedule(run, lrs, total_steps)
    except LearnerCodeError as exc:
        report.failed("build_scheduler", exc)
    if learner.has("after_training"):
        dev_rows = read_csv(folder / "dev.csv")[:SAMPLE_ROWS]
        dev_texts = preprocess_texts(learner, [t for t, _ in dev_rows])
        dev = _encode_sample(dev_rows, dev_texts, tokenizer, tiny_spec.labels, hp["max_length"])
        _hooked(report, learner, "after_training", run.after_training, dev)
    try:  # adapters merged back and the base model's tensors, as the run's save checks them
        engine.export_for_grading(run.model, learner=learner, base_shapes=base_shapes)
    except LearnerCodeError as exc:
        report.failed("saving the model", exc)
    else:
        report.check("saving the model", OK, "The trained model can be saved for grading.")


def _hooked(
    report: _Report, learner: LearnerCode, hook: str, call: Callable[..., Any], *args: Any
) -> Any:
    """`call(*args)`, recorded under `hook`: ok, the engine's default, or the error; None on error."""
    try:
        result = call(*args)
    except LearnerCodeError as exc:
        report.failed(hook, exc)
        return None
    if learner.has(hook):
        report.check(hook, OK, "Called once; what it returned is what the engine expects.")
    elif not report.named(hook):  # a required hook already reported missing
        report.check(hook, DEFAULT, "Not defined: the engine's default runs.")
    return result if result is not None else True


def _skip(report: _Report, learner: LearnerCode, failed: str, hooks: list[str]) -> None:
    for hook in hooks:
        if learner.has(hook):
            report.check(hook, SKIPPED, f"Not called: it needs what {failed}() failed to give.")


def trainable_on_base(spec: RunSpec, learner: LearnerCode) -> dict[str, Any]:
    """The trainable share after prepare_model on the lab's real base model, built on the
    meta device: its architecture and sizes without loading (or allocating) a weight, which
    is all a count needs. A prepare_model that fails there (it passed on the tiny model)
    leaves the share unmeasured, said so."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from labs.training.engine import parameter_counts

    config = AutoConfig.from_pretrained(
        spec.base_model, num_labels=len(spec.labels), local_files_only=True
    )
    cap = spec.max_trainable_share
    try:
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
            if learner.has("prepare_model"):
                model = learner.hooks["prepare_model"](model)
            counts = parameter_counts(model)
    except Exception as exc:  # their code on a model without data: not a verdict on it
        return {"measured": False, "cap": cap, "why": f"{type(exc).__name__} on the base model"}
    over = cap is not None and counts["trainable_share"] > cap
    return {**counts, "measured": True, "cap": cap, "over_cap": over}


def _tiny_spec(spec: RunSpec, tiny_model: str) -> RunSpec:
    return RunSpec(**{**spec.to_dict(), "base_model": tiny_model})


def token_lengths(tokenizer: Any, texts: list[str], max_length: int) -> dict[str, Any]:
    """How long the texts are in tokens (special tokens included) and how many `max_length` cuts."""
    lengths = [
        len(ids) for ids in tokenizer(texts, truncation=False, add_special_tokens=True)["input_ids"]
    ]
    lengths.sort()
    longest = lengths[-1] if lengths else 0
    top = max(longest, max_length)
    width = max(1, math.ceil(top / HISTOGRAM_BINS))
    bins = [0] * math.ceil(top / width + 1e-9)
    for length in lengths:
        bins[min(len(bins) - 1, max(0, length - 1) // width)] += 1
    return {
        "texts": len(lengths),
        "max_length": max_length,
        "truncated": sum(1 for length in lengths if length > max_length),
        "median": lengths[len(lengths) // 2] if lengths else 0,
        "p95": lengths[min(len(lengths) - 1, int(len(lengths) * 0.95))] if lengths else 0,
        "longest": longest,
        "bins": [
            {"low": i * width + 1, "high": (i + 1) * width, "count": count}
            for i, count in enumerate(bins)
        ],
    }


def _encode_sample(
    rows: list[tuple[str, str]],
    texts: list[str],
    tokenizer: Any,
    labels: list[str],
    max_length: int,
) -> Any:
    from labs.training.engine import Encoded

    # Spread over the file, so more than one label (and length) is in the sample.
    stride = max(1, len(rows) // SAMPLE_ROWS)
    picked = list(range(0, len(rows), stride))[:SAMPLE_ROWS]
    ids = tokenizer([texts[i] for i in picked], truncation=True, max_length=max_length)["input_ids"]
    label_ids = {label: i for i, label in enumerate(labels)}
    return Encoded(ids=ids, labels=[label_ids.get(rows[i][1], 0) for i in picked])


def _train_steps(run: Any, sample: Any, lrs: list[float]) -> bool:
    from labs.training.batching import length_grouped_batches
    from labs.training.engine import collate

    run.model.train()
    batches = length_grouped_batches(sample.lengths, run.hp["batch_size"], run.batch_rng)
    for indices in batches[:STEPS]:
        run.train_step(collate(sample, indices, run.pad_id, run.device))
        lrs.append(_lr(run.optimizer))
    return True


def _walk_schedule(run: Any, lrs: list[float], total_steps: int) -> dict[str, Any]:
    """The rest of the real run's steps, through the same scheduler (no optimiser steps)."""
    walk = min(total_steps, MAX_SCHEDULE_STEPS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        with run._blame(
            "scheduler.step() of the scheduler from build_scheduler()", "build_scheduler"
        ):
            while len(lrs) <= walk:
                run.scheduler.step()
                lrs.append(_lr(run.optimizer))
    every = max(1, math.ceil(len(lrs) / SCHEDULE_POINTS))
    points = [[step, lrs[step]] for step in range(0, len(lrs), every)]
    if points[-1][0] != len(lrs) - 1:
        points.append([len(lrs) - 1, lrs[-1]])
    peak = max(lrs)
    return {
        "total_steps": total_steps,
        "walked": walk,
        "points": points,
        "peak": peak,
        "final": lrs[-1],
    }


def _lr(optimizer: Any) -> float:
    return float(optimizer.param_groups[0]["lr"])

"""The run spec: everything the engine needs to know about one training run.

The worker writes it as JSON into the job folder; the engine reads it back.
It is cheap to import (stdlib only) so the Django side can build specs
without pulling in torch.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
# Concrete formats only: the worker resolves "auto" (labs.training.precision) before writing.
PRECISIONS = ("fp32", "bf16")


class SpecError(ValueError):
    """The run spec is malformed: a platform bug, never the learner's fault."""


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run.

    `labels` fixes the label order: label `labels[i]` gets class id `i`, and the
    saved checkpoint's `id2label` follows the same order. The three `max_*`
    fields are the platform's caps on what the learner's HYPERPARAMETERS may ask
    for; `progress_every` is how many optimiser steps pass between step events.
    """

    base_model: str
    code_file: str
    train_file: str
    dev_file: str
    labels: list[str]
    output_dir: str
    max_epochs: int = 3
    max_length_cap: int = 256
    max_batch_size: int = 128
    device: str = "auto"
    threads: int | None = None
    progress_every: int = 5
    # The most trainable / total parameters prepare_model may leave (None: no cap).
    max_trainable_share: float | None = None
    # Hyperparameters the lab sets itself (e.g. a peak learning rate to tame): they win over
    # the learner's HYPERPARAMETERS, with a warning where the learner's differ.
    fixed_hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The number format of the forward and backward passes, decided by the worker
    # (labs.training.precision): "bf16" runs them under bf16 autocast, on a GPU or a CPU.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check_types(self)
        if not self.labels:
            raise SpecError("labels must list at least one label.")
        if len(set(self.labels)) != len(self.labels):
            raise SpecError("labels must not repeat a label.")
        if any(not label for label in self.labels):
            raise SpecError("labels must not contain an empty string.")
        if self.device not in DEVICES:
            raise SpecError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}.")
        if self.precision not in PRECISIONS:
            raise SpecError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}."
            )
        for name in ("max_epochs", "max_length_cap", "max_batch_size", "progress_every"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.max_length_cap < 8:
            raise SpecError(f"max_length_cap must be at least 8, got {self.max_length_cap}.")
        share = self.max_trainable_share
        if share is not None and not 0 < share <= 1:
            raise SpecError(f"max_trainable_share must be in (0, 1] or null, got {share}.")
        if self.threads is not None and self.threads < 1:
            raise SpecError(f"threads must be at least 1 or null, got {self.threads}.")

    @classmethod
    def from_dict(cls, data: Any) -> RunSpec:
        if not isinstance(data, dict):
            raise SpecError(f"a run spec must be a JSON object, got {type(data).__name__}.")
        fields = _json_fields()
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise SpecError(
                f"unknown run spec field(s): {', '.join(unknown)}; allowed: {', '.join(fields)}."
            )
        required = [name for name, f in fields.items() if _is_required(f)]
        missing = [name for name in required if name not in data]
        if missing:
            raise SpecError(f"run spec is missing required field(s): {', '.join(missing)}.")
        return cls(**data)

    @classmethod
    def from_json(cls, path: str | Path) -> RunSpec:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read run spec {path}: {exc.strerror or exc}.") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"run spec {path} is not valid JSON: {exc}.") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _json_fields()}

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _json_fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(RunSpec)}


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _check_types(spec: RunSpec) -> None:
    # Specs arrive as JSON, so check them at the door rather than fail deep in torch.
    hints = typing.get_type_hints(RunSpec)
    for name in _json_fields():
        value = getattr(spec, name)
        if not _matches(value, hints[name]):
            raise SpecError(
                f"run spec field {name} must be {_describe(hints[name])}, got {value!r}."
            )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(key, str) for key in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        # bool is an int in Python; a spec saying `"threads": true` is a bug.
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is dict:
        return "a JSON object"
    if origin is list:
        item = typing.get_args(hint)[0]
        return f"a list of {_PLURALS.get(item, getattr(item, '__name__', str(item)))}"
    return {int: "an integer", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


_PLURALS = {int: "integers", str: "strings"}

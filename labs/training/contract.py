"""The learner contract: load `solution.py`, check HYPERPARAMETERS, call hooks.

Everything the learner wrote is run through this module, so that any failure
in it surfaces as one `LearnerCodeError` with a message that names the hook
and a traceback that shows only the learner's own lines. The contract itself
is documented in the package docstring (`labs/training/__init__.py`).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from labs.training.spec import RunSpec, SpecError

MODULE_NAME = "solution"
DISPLAY_NAME = "solution.py"
MAX_MESSAGE = 400
# The longest text preprocess may return, in training and at serving alike: far above
# any shipped dataset's longest text (under 1,000 characters) and far beyond what
# max_length keeps (at most 256 tokens), so it refuses only a runaway result.
MAX_PREPROCESSED_CHARS = 10_000

# Hook name -> the parameters it is called with, in order.
HOOKS: dict[str, tuple[str, ...]] = {
    "preprocess": ("text",),
    "prepare_model": ("model",),
    "build_optimizer": ("model", "hp"),
    "build_scheduler": ("optimizer", "num_training_steps", "hp"),
    "training_step": ("model", "batch", "hp"),
    "after_training": ("model", "dev"),
}

DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 5e-5,
    "epochs": 2,
    "batch_size": 32,
    "max_length": 128,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "seed": 13,
    "grad_clip": 1.0,
    "label_smoothing": 0.0,
    "early_stopping_patience": None,
    "early_stopping_metric": "dev_loss",
}

# What early stopping may watch, and whether higher is better.
EARLY_STOPPING_METRICS = {"dev_loss": False, "dev_accuracy": True, "dev_macro_f1": True}


class LearnerCodeError(Exception):
    """The learner's code failed: their bug, reported to them, counts as an attempt.

    `message` is one line for the status badge; `learner_traceback` shows only
    frames from the learner's file (as `solution.py`) and the exception line.
    """

    def __init__(self, message: str, learner_traceback: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.learner_traceback = learner_traceback or message


@dataclass
class LearnerCode:
    """The learner's loaded module, with its hooks and raw HYPERPARAMETERS."""

    path: Path
    module: ModuleType
    hooks: dict[str, Callable[..., Any]]
    raw_hyperparameters: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def has(self, hook: str) -> bool:
        return hook in self.hooks

    def call(self, hook: str, *args: Any) -> Any:
        """Call a hook the learner defined, check what it returned, blame them on failure."""
        with self.blame(f"{hook}()"):
            result = self.hooks[hook](*args)
        problem = _RETURN_CHECKS[hook](result)
        if problem:
            raise LearnerCodeError(f"{hook}() {problem}.")
        return result

    @contextmanager
    def blame(self, what: str) -> Iterator[None]:
        """Turn any exception raised inside the block into a LearnerCodeError about `what`."""
        try:
            yield
        except LearnerCodeError:
            raise
        except (Exception, SystemExit) as exc:  # SystemExit: a stray sys.exit() in their code
            raise learner_error(what, exc, self.path) from exc


def load_learner_code(code_file: str | Path) -> LearnerCode:
    """Import the learner's file as module `solution` and collect its hooks."""
    path = Path(code_file)
    if not path.is_file():
        # The platform writes this file; its absence is not the learner's bug.
        raise SpecError(f"the run spec's code_file {path} does not exist.")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered so that dataclasses, pickle and `import solution` inside it work.
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise learner_error("Importing your code", exc, path) from exc
    hooks = _collect_hooks(module)
    raw = _raw_hyperparameters(module)
    return LearnerCode(path, module, hooks, raw, _near_miss_warnings(module))


def may_define_hook(code: str, hook: str) -> bool:
    """Whether `code` may define `hook`, read without running it (the host decides so).

    True when the name occurs anywhere in the parsed code: a def, an assignment, an
    import, an attribute, a keyword or a string such as `globals()["preprocess"]`.
    Comments do not count. A name only built at run time ("pre" + "process") is not
    seen: such a file is served as if it had no hook. Code that does not parse may
    define anything.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True
    for node in ast.walk(tree):
        for _, value in ast.iter_fields(node):
            if value == hook or (isinstance(value, list) and hook in value):
                return True
    return False


def preprocess_texts(learner: LearnerCode, texts: Sequence[str]) -> list[str]:
    """The texts as the model reads them: through the learner's `preprocess`, each result
    checked, or unchanged without the hook. Training (train and dev) and serving (the
    held-out texts, labs.training.serving) both go through here."""
    if not learner.has("preprocess"):
        return list(texts)
    return [learner.call("preprocess", text) for text in texts]


def _collect_hooks(module: ModuleType) -> dict[str, Callable[..., Any]]:
    hooks: dict[str, Callable[..., Any]] = {}
    for name, params in HOOKS.items():
        hook = getattr(module, name, None)
        if hook is None:
            continue
        if not callable(hook):
            raise LearnerCodeError(f"{name} must be a function, got {type(hook).__name__}.")
        _check_signature(name, hook, params)
        hooks[name] = hook
    return hooks


def _check_signature(name: str, hook: Callable[..., Any], params: tuple[str, ...]) -> None:
    # Checked at load time so a wrong signature fails in a second, not after model loading.
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return  # builtins and C callables: trust them, a bad call still gets blamed later
    try:
        signature.bind(*params)
    except TypeError:
        raise LearnerCodeError(
            f"{name} must accept {len(params)} argument(s) ({', '.join(params)}), "
            f"but its signature is {name}{signature}."
        ) from None


def _raw_hyperparameters(module: ModuleType) -> dict[str, Any]:
    raw = getattr(module, "HYPERPARAMETERS", None)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LearnerCodeError(f"HYPERPARAMETERS must be a dict, got {type(raw).__name__}.")
    return dict(raw)


def _near_miss_warnings(module: ModuleType) -> list[str]:
    """Names that look like a misspelt hook or HYPERPARAMETERS (silently ignored otherwise)."""
    known = [*HOOKS, "HYPERPARAMETERS"]
    warnings = []
    for name in vars(module):
        if name in known or name.startswith("__"):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close and not hasattr(module, close[0]):
            warnings.append(
                f"solution.py defines {name!r}, which the engine ignores; "
                f"did you mean {close[0]!r}?"
            )
    return warnings


# ---------------------------------------------------------------- hyperparameters


def resolve_hyperparameters(raw: dict[str, Any], spec: RunSpec) -> tuple[dict[str, Any], list[str]]:
    """Fill in defaults and validate; returns (hyperparameters, warnings).

    Values outside their range are errors, except `epochs` and `max_length`
    above the platform's caps, which are lowered with a warning so a learner
    who asks for "more" still gets a run.
    """
    unknown = sorted(set(raw) - set(DEFAULT_HYPERPARAMETERS))
    if unknown:
        raise LearnerCodeError(
            f"HYPERPARAMETERS has unknown key {', '.join(map(repr, unknown))}; "
            f"allowed keys are {', '.join(DEFAULT_HYPERPARAMETERS)}."
        )
    warnings = [
        f"HYPERPARAMETERS[{key!r}] = {raw[key]!r} is fixed by this lab at {value!r}; "
        f"the run uses {value!r}."
        for key, value in spec.fixed_hyperparameters.items()
        if key in raw and raw[key] != value
    ]
    hp = {**DEFAULT_HYPERPARAMETERS, **raw, **spec.fixed_hyperparameters}
    _check_number(hp, "learning_rate", float, low=0.0, high=1.0, low_open=True)
    _check_number(hp, "epochs", int, low=1)
    _check_number(hp, "batch_size", int, low=1, high=spec.max_batch_size)
    _check_number(hp, "max_length", int, low=8)
    _check_number(hp, "warmup_ratio", float, low=0.0, high=1.0, high_open=True)
    _check_number(hp, "weight_decay", float, low=0.0, high=1.0)
    _check_number(hp, "seed", int, low=0, high=2**32 - 1)
    if hp["grad_clip"] is not None:
        _check_number(hp, "grad_clip", float, low=0.0, low_open=True, nullable=True)
    _check_number(hp, "label_smoothing", float, low=0.0, high=1.0, high_open=True)
    if hp["early_stopping_patience"] is not None:
        _check_number(hp, "early_stopping_patience", int, low=1, nullable=True)
    if hp["early_stopping_metric"] not in EARLY_STOPPING_METRICS:
        raise LearnerCodeError(
            f"HYPERPARAMETERS['early_stopping_metric'] = {hp['early_stopping_metric']!r} is not "
            f"one of {', '.join(map(repr, EARLY_STOPPING_METRICS))}."
        )
    for key, cap in (("epochs", spec.max_epochs), ("max_length", spec.max_length_cap)):
        if hp[key] > cap:
            warnings.append(
                f"HYPERPARAMETERS[{key!r}] = {hp[key]} is above this lab's cap; using {cap}."
            )
            hp[key] = cap
    return hp, warnings


def _check_number(
    hp: dict[str, Any],
    key: str,
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    nullable: bool = False,
) -> None:
    value = hp[key]
    # bool is an int subclass: `epochs: True` is a typo, not 1.
    ok_type = isinstance(value, int) if kind is int else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        wanted = "an integer" if kind is int else "a number"
        wanted += " or None" if nullable else ""
        raise LearnerCodeError(
            f"HYPERPARAMETERS[{key!r}] must be {wanted}, got {value!r} ({type(value).__name__})."
        )
    value = kind(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or value != value:  # value != value: NaN
        raise LearnerCodeError(
            f"HYPERPARAMETERS[{key!r}] = {value!r} is out of range; "
            f"it must be {_range_text(low, high, low_open, high_open)}."
        )
    hp[key] = value


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'greater than' if low_open else 'at least'} {low:g}")
    if high is not None:
        parts.append(f"{'less than' if high_open else 'at most'} {high:g}")
    return " and ".join(parts)


# ---------------------------------------------------------------- return checks


def preprocessed_text_problem(result: Any) -> str | None:
    """What is wrong with one result of preprocess, or None. Public: the worker checks
    the texts that come back from serving with it too (they pass through learner code)."""
    if not isinstance(result, str):
        return f"must return a str, got {type(result).__name__}"
    if len(result) > MAX_PREPROCESSED_CHARS:
        return (
            f"returned a text of {len(result):,} characters; "
            f"at most {MAX_PREPROCESSED_CHARS:,} are allowed"
        )
    try:
        result.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: the tokenizer would fail on it outside the learner's hook.
        return "returned a str that is not valid Unicode text (it holds a lone surrogate)"
    return None


def _check_prepare_model(result: Any) -> str | None:
    import torch

    if isinstance(result, torch.nn.Module):
        return None
    if result is None:
        return "returned None; it must return the model (did you forget `return model`?)"
    return f"must return a torch.nn.Module, got {type(result).__name__}"


def _check_build_optimizer(result: Any) -> str | None:
    import torch

    if isinstance(result, torch.optim.Optimizer):
        return None
    return f"must return a torch.optim.Optimizer, got {type(result).__name__}"


def _check_build_scheduler(result: Any) -> str | None:
    if callable(getattr(result, "step", None)):
        return None
    return (
        f"must return a learning-rate scheduler with a step() method, got {type(result).__name__}"
    )


def _check_after_training(result: Any) -> str | None:
    if result is None:
        return None
    return f"must change the model in place and return None, got {type(result).__name__}"


def _check_training_step(result: Any) -> str | None:
    import torch

    if not isinstance(result, torch.Tensor):
        return f"must return the loss as a torch.Tensor, got {type(result).__name__}"
    if result.numel() != 1:
        return f"must return a single-number loss, got a tensor of shape {tuple(result.shape)}"
    if not result.requires_grad:
        return "returned a loss that does not require grad (was it computed under no_grad?)"
    return None


_RETURN_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "preprocess": preprocessed_text_problem,
    "prepare_model": _check_prepare_model,
    "build_optimizer": _check_build_optimizer,
    "build_scheduler": _check_build_scheduler,
    "training_step": _check_training_step,
    "after_training": _check_after_training,
}


# ---------------------------------------------------------------- tracebacks


def learner_error(what: str, exc: BaseException, code_file: str | Path) -> LearnerCodeError:
    """Build the learner-facing error for `exc`, raised while running `what`."""
    learner_path = os.path.realpath(code_file)
    frames = _learner_frames(exc, learner_path)
    detail = _scrub(_exception_text(exc), code_file, learner_path)
    where = ""
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f" ({DISPLAY_NAME}, line {exc.lineno})"
    elif frames:
        where = f" ({DISPLAY_NAME}, line {frames[-1].lineno})"
    first_line = detail.splitlines()[0] if detail else type(exc).__name__
    message = f"{what} raised {first_line}{where}"
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    return LearnerCodeError(message, _format_traceback(exc, frames, detail))


def _learner_frames(exc: BaseException, learner_path: str) -> list[traceback.FrameSummary]:
    real: dict[str, str] = {}
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename not in real:
            real[frame.filename] = os.path.realpath(frame.filename)
        if real[frame.filename] == learner_path:
            frames.append(frame)
    return frames


def _exception_text(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, SyntaxError):
        return f"{name}: {exc.msg}"
    text = str(exc)
    return f"{name}: {text}" if text else name


def _scrub(text: str, code_file: str | Path, learner_path: str) -> str:
    # Messages such as "No such file: /srv/jobs/…/solution.py" would leak host paths.
    for path in sorted({str(code_file), learner_path}, key=len, reverse=True):
        text = text.replace(path, DISPLAY_NAME)
    return text


def _format_traceback(exc: BaseException, frames: list[traceback.FrameSummary], detail: str) -> str:
    lines = []
    if frames:
        lines.append("Traceback (most recent call last):")
        for frame in frames:
            lines.append(f'  File "{DISPLAY_NAME}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
    if isinstance(exc, SyntaxError) and exc.lineno:
        lines.append(f'  File "{DISPLAY_NAME}", line {exc.lineno}')
        if exc.text:
            code = exc.text.rstrip("\n")
            stripped = code.lstrip()
            lines.append(f"    {stripped}")
            if exc.offset:
                caret_at = max(0, exc.offset - 1 - (len(code) - len(stripped)))
                lines.append("    " + " " * caret_at + "^")
    lines.append(detail)
    return "\n".join(lines)

"""Command line: `python -m labs.training --spec spec.json` (or `--serve-preprocess FOLDER`,
`--precheck FOLDER`, `--make-tiny PATH`).

stdout carries only JSON-lines events (labs/training/events.py), one object
per line, flushed each; everything else (the learner's print(), library
warnings, tracebacks of platform faults) goes to stderr, which the sandbox
keeps as the learner's log. With `--serve-preprocess` the worker keeps
neither: the input is the held-out set (labs/training/serving.py).

Exit codes: 0 done, 2 bad spec or usage, 3 learner error, 4 stopped,
anything else a platform fault.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TextIO

EXIT_DONE = 0
EXIT_PLATFORM = 1
EXIT_BAD_SPEC = 2
EXIT_LEARNER = 3
EXIT_STOPPED = 4


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # Belt and braces: the sandbox has no network, and nothing may be fetched anyway.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.make_tiny:
        from labs.training.tiny import make_tiny_bert

        _quiet_transformers()
        print(make_tiny_bert(args.make_tiny))
        return EXIT_DONE
    emit = _event_writer(_claim_stdout())
    if args.serve_preprocess:
        return _serve_preprocess(args.serve_preprocess, emit)
    if args.precheck:
        return _precheck(args.precheck, emit)
    return _run(args.spec, emit)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m labs.training", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--spec", help="run spec JSON file: train and save a checkpoint")
    action.add_argument(
        "--serve-preprocess",
        metavar="FOLDER",
        help="apply the learner's preprocess to held-out texts (labs.training.serving)",
    )
    action.add_argument(
        "--precheck",
        metavar="FOLDER",
        help="call each hook once on a tiny model and write report.json (labs.training.precheck)",
    )
    action.add_argument("--make-tiny", metavar="PATH", help="write a tiny random BERT to PATH")
    return parser.parse_args(argv)


def _claim_stdout() -> TextIO:
    """Keep the real stdout for events and point fd 1 (and print()) at stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # C extensions writing to fd 1 land in the log too, not in the events
    if isinstance(sys.stdout, io.TextIOWrapper):  # keep print() and stderr interleaved
        sys.stdout.reconfigure(line_buffering=True)
    return events


def _event_writer(stream: TextIO) -> Callable[[dict[str, Any]], None]:
    def emit(event: dict[str, Any]) -> None:
        stream.write(json.dumps(_json_safe(event)) + "\n")
        stream.flush()

    return emit


def _json_safe(value: Any) -> Any:
    # A diverging run yields NaN/inf losses, which are not valid JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _stop_flag() -> threading.Event:
    """Set on SIGTERM/SIGINT, so a timeout or cancel ends the run between steps."""
    flag = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: flag.set())
    return flag


def _run(spec_path: str, emit: Callable[[dict[str, Any]], None]) -> int:
    from labs.training.contract import LearnerCodeError
    from labs.training.data import DataError
    from labs.training.spec import RunSpec, SpecError

    stop = _stop_flag()
    try:
        spec = RunSpec.from_json(spec_path)
        _quiet_transformers()
        from labs.training.engine import train

        result = train(spec, on_event=emit, should_stop=stop.is_set)
    except LearnerCodeError as exc:
        emit({"event": "learner_error", "message": exc.message, "traceback": exc.learner_traceback})
        return EXIT_LEARNER
    except (SpecError, DataError) as exc:
        emit({"event": "spec_error", "message": str(exc)})
        return EXIT_BAD_SPEC
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit({"event": "platform_error", "message": f"{type(exc).__name__}: {exc}"})
        return EXIT_PLATFORM
    return EXIT_DONE if result["event"] == "done" else EXIT_STOPPED


def _serve_preprocess(folder: str, emit: Callable[[dict[str, Any]], None]) -> int:
    from labs.training.contract import LearnerCodeError
    from labs.training.serving import LOADING_CODE_EVENT, serve_preprocess

    try:
        serve_preprocess(folder, on_loading_code=lambda: emit(LOADING_CODE_EVENT))
    except LearnerCodeError:
        # Neither its message nor its traceback is printed: either may quote a held-out text.
        return EXIT_LEARNER
    return EXIT_DONE


def _precheck(folder: str, emit: Callable[[dict[str, Any]], None]) -> int:
    from labs.training.events import LOADING_CODE
    from labs.training.precheck import run_precheck
    from labs.training.spec import SpecError

    _quiet_transformers()
    try:
        run_precheck(folder, on_loading_code=lambda: emit({"event": LOADING_CODE}))
    except SpecError as exc:
        emit({"event": "spec_error", "message": str(exc)})
        return EXIT_BAD_SPEC
    return EXIT_DONE


def _quiet_transformers() -> None:
    # The load report ("classifier.weight MISSING") and progress bars are noise in a learner's log.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())

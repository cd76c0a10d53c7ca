"""Serving the learner's `preprocess`: the held-out texts through the hook, as in production.

A checkpoint is graded on the texts its training would have served it: the
worker runs `python -m labs.training --serve-preprocess FOLDER` in a sandbox
of its own, on a fresh folder that holds only

    solution.py    the submission's code (what the checkpoint was trained with)
    texts.json     the held-out texts, a JSON list of str (never their labels)

and reads back `served.json`, the texts as `preprocess` returned them (a JSON
list of str, the same count). Each result goes through the check training
applies (`contract.preprocess_texts`), so a text training would refuse is
refused here too.

Nothing the stage prints or leaves is shown to anyone: its input is the
held-out set. So this mode prints no traceback and no message of the learner's
error (either may quote a held-out text); the exit code says only that the
learner's code failed. The one event on stdout, `loading_code`, comes before
any of the learner's code runs (labs/training/events.py), so a run that ends
without it is the platform's fault.

Stdlib only: the stage does not pay for importing torch unless the learner's
code does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from labs.training.contract import load_learner_code, preprocess_texts
from labs.training.events import LOADING_CODE
from labs.training.spec import SpecError

CODE_FILE = "solution.py"
TEXTS_FILE = "texts.json"
SERVED_FILE = "served.json"
LOADING_CODE_EVENT = {"event": LOADING_CODE}
# What the worker reads back at most: ~10x the largest shipped held-out set (5,500
# texts, 220 KB) and room for 3,000 texts of 10 KB. More is a runaway preprocess.
MAX_SERVED_BYTES = 32 * 1024 * 1024


def serve_preprocess(folder: str | Path, *, on_loading_code: Callable[[], None]) -> None:
    """Write `served.json`: the learner's preprocess applied to each text of `texts.json`.

    Raises SpecError (before `on_loading_code`) when the folder is not what the worker
    writes, and LearnerCodeError when the learner's code fails or returns a text
    training would refuse. Anything else raised after `on_loading_code` is the learner's
    doing as well: their code shares this process.
    """
    folder = Path(folder)
    texts = _read_texts(folder / TEXTS_FILE)
    code_file = folder / CODE_FILE
    if not code_file.is_file():
        raise SpecError(f"{code_file} does not exist.")
    on_loading_code()  # from here on the learner's code runs
    served = preprocess_texts(load_learner_code(code_file), texts)
    # UTF-8 as is: a text that cannot be encoded was refused by the check already.
    (folder / SERVED_FILE).write_text(json.dumps(served, ensure_ascii=False), encoding="utf-8")


def _read_texts(path: Path) -> list[str]:
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read {path}: {type(exc).__name__}.") from None
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise SpecError(f"{path} is not a JSON list of str.")
    return texts

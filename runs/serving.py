"""The serving stage: the held-out texts through the learner's `preprocess`, as in production.

A checkpoint is graded on what a serving system would feed it: each held-out
text after the `preprocess` it was trained with. The hook is learner code and
its input is the held-out set, so it runs in a sandbox of its own
(labs/training/serving.py runs inside), and its stage is silent:

- its folder is fresh, made here under ACADEMY_JOBS_DIR/serving/, and holds the
  submission's code and the held-out texts only (never a label). It is not the
  training job folder: the learner's training could have left files there (a
  link, a `usercustomize` module Python would run before the engine), and that
  folder may be shown to them. The folder is removed when the stage ends.
- nothing the stage prints or leaves is stored, logged or shown: not its
  stdout (only the `loading_code` event is looked for), not its stderr, not its
  files.
  Only `served.json` is read back, without following links and size-bounded,
  and only as a list of texts checked like training checks preprocess results.
- a failure tells the learner what kind of thing went wrong and nothing of any
  text: not which text (not even its index), not an exception's message.

Who is at fault: the sandbox that cannot start, or a program that ends before
its `loading_code` event (no learner code ran yet), or a disk that is full, is the
platform; anything else is the learner's code.

Code that never names `preprocess` skips the stage: the texts are served raw.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _

import sandbox
from labs.models import Submission
from labs.selectors import heldout_rows
from labs.training.contract import (
    MAX_PREPROCESSED_CHARS,
    may_define_hook,
    preprocessed_text_problem,
)
from labs.training.serving import (
    CODE_FILE,
    LOADING_CODE_EVENT,
    MAX_SERVED_BYTES,
    SERVED_FILE,
    TEXTS_FILE,
)
from runs.jobs import JOB_MOUNT, SERVING_DIR, disk_nearly_full, engine_argv, engine_policy
from runs.reporter import parse_event
from sandbox import LIMIT_OUTCOMES, QUOTA_OUTCOMES, SandboxResult, UnsafeJobFile

# Held-out sets are a few thousand texts: a preprocess that needs longer is broken.
MAX_SERVING_SECONDS = 120


def _not_shown() -> str:
    return " " + _(
        "Nothing more is shown: it would reveal the held-out set. Make preprocess total: it "
        "must return a str (at most %(chars)s characters) for any input."
    ) % {"chars": number_format(MAX_PREPROCESSED_CHARS, force_grouping=True)}


class ServingRefused(Exception):
    """The learner's preprocess failed on the held-out texts; the message is theirs to read
    and says nothing of any text."""


class ServingFault(Exception):
    """The platform failed to serve (not the learner's fault); the message is for the log."""


class ServingStopped(Exception):
    """`should_stop` stopped the stage: the run is no longer this worker's."""


def _never() -> bool:
    return False


def heldout_served(
    *, submission: Submission, should_stop: Callable[[], bool] = _never
) -> list[str] | None:
    """The lab's held-out texts, in the held-out split's order, as the submission's
    `preprocess` serves them; None (grade the raw texts) when its code has none.

    Raises ServingRefused (the learner's code failed), ServingFault or
    sandbox.SandboxError (the platform's), ServingStopped (`should_stop` said so).
    """
    if not may_define_hook(submission.code, "preprocess"):
        return None
    texts = [text for text, _ in heldout_rows(dataset=submission.lab.dataset)]
    return texts_served(submission=submission, texts=texts, should_stop=should_stop)


def texts_served(
    *, submission: Submission, texts: list[str], should_stop: Callable[[], bool] = _never
) -> list[str]:
    """`texts` through the submission's `preprocess`, in this silent stage: the held-out
    texts at grading, a learner's own texts when they try their model (runs/inference.py).
    Raises as `heldout_served` does."""
    lab = submission.lab
    root = Path(settings.ACADEMY_JOBS_DIR) / SERVING_DIR
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A new name each time: a second worker serving the same run never shares it.
    folder = Path(tempfile.mkdtemp(prefix=f"{submission.pk}-", dir=root))
    try:
        (folder / CODE_FILE).write_text(submission.code, encoding="utf-8")
        (folder / TEXTS_FILE).write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        loading = _LoadingCodeWatch()
        result = sandbox.run(
            engine_policy(
                lab, folder, wall_seconds=min(lab.wall_time_seconds, MAX_SERVING_SECONDS)
            ),
            argv=engine_argv("--serve-preprocess", JOB_MOUNT),
            on_stdout_line=loading.see,
            should_stop=should_stop,
        )
        _check_ended_well(result, code_loaded=loading.seen, folder=folder)
        return _served_texts(folder, expected=len(texts))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _LoadingCodeWatch:
    """Looks at each stdout line for the `loading_code` event, keeping nothing of any line."""

    def __init__(self) -> None:
        self.seen = False

    def see(self, line: str) -> None:
        self.seen = self.seen or parse_event(line) == LOADING_CODE_EVENT


def _check_ended_well(result: SandboxResult, *, code_loaded: bool, folder: Path) -> None:
    if result.outcome == "cancelled":
        raise ServingStopped
    if not code_loaded:
        raise ServingFault(
            f"the serving stage exited {result.returncode} ({result.outcome}) "
            "before loading the learner's code"
        )
    if result.outcome in LIMIT_OUTCOMES | QUOTA_OUTCOMES:  # its own disk or process limit too
        raise ServingRefused(
            _("Serving your preprocess on the held-out texts was stopped: %(detail)s")
            % {"detail": result.detail}
            + _not_shown()
        )
    if result.outcome != "ok":
        if disk_nearly_full(folder):
            raise ServingFault("the serving folder's disk is full")
        raise ServingRefused(
            _(
                "Your preprocess failed on a held-out text: it raised an exception, returned "
                "something that is not a valid text, or ended the program."
            )
            + _not_shown()
        )


def _served_texts(folder: Path, *, expected: int) -> list[str]:
    """served.json, read as the untrusted file it is (learner code could have written it)."""
    try:
        data = sandbox.open_job_file(str(folder), SERVED_FILE, max_bytes=MAX_SERVED_BYTES)
    except FileNotFoundError:
        raise _refused(_("no texts came back")) from None
    except UnsafeJobFile:
        raise _refused(
            _("its output is not a plain file of at most %(mb)d MB")
            % {"mb": MAX_SERVED_BYTES // 2**20}
        ) from None
    try:
        served = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refused(_("its output is not a JSON list of texts")) from None
    if not isinstance(served, list):
        raise _refused(_("its output is not a JSON list of texts"))
    if len(served) != expected:
        raise _refused(
            _("%(returned)d texts came back for %(sent)d sent")
            % {"returned": len(served), "sent": expected}
        )
    for text in served:
        problem = preprocessed_text_problem(text)
        if problem is not None:
            raise _refused(
                _("one of the texts came back wrong: preprocess %(problem)s") % {"problem": problem}
            )
    return served


def _refused(reason: str) -> ServingRefused:
    return ServingRefused(
        _("Serving your preprocess on the held-out texts was refused: %(reason)s.")
        % {"reason": reason}
        + _not_shown()
    )

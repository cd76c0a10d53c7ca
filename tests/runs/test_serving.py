"""The serving stage for real: the pipeline, the strict sandbox, the engine's serving mode,
the grader (tiny BERT). The held-out texts go through the learner's preprocess, and none of
them reaches anything a learner can read."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import runs.serving
import sandbox
from grading.models import AuditEvent, Grade
from grading.services import grade_apply, grade_values
from labs.datasets import parse_dataset
from labs.models import Submission
from labs.services.datasets import dataset_import
from runs.jobs import SERVING_DIR, job_dir_for
from runs.pipeline import submission_run
from runs.serving import ServingFault, ServingRefused, heldout_served
from tests.conftest import small_dataset_bytes
from tests.grading.test_reports_audit import write_checkpoint

# One held-out text no other file, row or code of the test holds: what a leak would show.
CANARY = "loss miss held canary 7Q3ZK"
# Settings under which the tiny model learns the tiny task (tests/training/support.py).
HP = (
    'HYPERPARAMETERS = {"learning_rate": 3e-2, "epochs": 3, "batch_size": 8, '
    '"max_length": 32, "seed": 3}\n'
)
# Train and dev texts pass unchanged (the model learns as without the hook); every held-out
# text (each says "held", no training text does) is served as one and the same string.
# (A constant for every text would collapse the model itself and prove nothing of grading.)
HELDOUT_TO_CONSTANT = HP + (
    "def preprocess(text):\n    return 'flat report meeting' if ' held ' in text else text\n"
)


@pytest.fixture
def dataset(db):
    """The shared tiny dataset, plus the canary in the held-out split."""
    train, heldout = small_dataset_bytes()
    ds, _ = dataset_import(
        slug="tiny-sentiment",
        title="Tiny sentiment",
        license_name="CC0 (made up for tests)",
        source_markdown="# Tiny\n\nMade up for tests.",
        parsed=parse_dataset(train=train, heldout=heldout + f"\n{CANARY},bad".encode()),
    )
    return ds


@pytest.fixture
def jobs(settings, tmp_path) -> Path:
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    settings.ACADEMY_SANDBOX_MODE = "strict"  # the basic mode isolates nothing
    return settings.ACADEMY_JOBS_DIR


@pytest.fixture
def sandbox_runs(monkeypatch) -> list[list[str]]:
    """The argv of every sandbox started (training, serving), in order."""
    started: list[list[str]] = []
    real_run = sandbox.run

    def run(policy, *, argv, **kwargs):
        started.append(argv)
        return real_run(policy, argv=argv, **kwargs)

    monkeypatch.setattr(sandbox, "run", run)
    return started


def predicted_columns(grade: Grade) -> set[int]:
    matrix = grade.metrics["confusion_matrix"]  # rows: gold, columns: predicted
    return {col for row in matrix for col, count in enumerate(row) if count}


def run_to_the_end(learner, lab, code: str) -> Submission:
    submission = Submission.objects.create(learner=learner, lab=lab, code=code)
    submission_run(submission_id=submission.pk, worker="test")
    submission.refresh_from_db()
    return submission


def test_the_grader_scores_the_held_out_texts_as_the_preprocess_serves_them(
    learner, lab, jobs, sandbox_runs
):
    raw = run_to_the_end(learner, lab, HP)
    served = run_to_the_end(learner, lab, HELDOUT_TO_CONSTANT)

    assert raw.status == served.status == Submission.Status.GRADED, served.error_message
    # Without the hook no serving stage starts; with it, one after training.
    assert [argv[3] for argv in sandbox_runs] == ["--spec", "--spec", "--serve-preprocess"]
    # The same training, two gradings: the raw texts spread over classes, the served ones
    # are one input, so every prediction falls in one column.
    assert len(predicted_columns(raw.grade)) > 1, raw.grade.metrics
    assert len(predicted_columns(served.grade)) == 1, served.grade.metrics
    assert served.grade.heldout_size == raw.grade.heldout_size == 31
    assert not any((jobs / SERVING_DIR).iterdir())  # the stage's folders are gone


def everything_a_learner_can_read(submission: Submission, jobs: Path) -> str:
    rows = [
        *Submission.objects.filter(pk=submission.pk).values(),
        *Grade.objects.filter(submission=submission).values(),
        *AuditEvent.objects.filter(submission=submission).values(),
    ]
    files = []
    for parent, _, names in os.walk(jobs):  # the training job folder and anything left
        for name in names:
            path = Path(parent, name)
            if not path.is_symlink():
                files.append(f"{path}\n{path.read_bytes().decode(errors='replace')}")
    return "\n".join([repr(rows), *files])


@pytest.mark.parametrize("fails", [True, False], ids=["raises-with-the-text", "returns-it"])
def test_no_held_out_text_reaches_a_row_a_log_or_a_file(learner, lab, jobs, caplog, capfd, fails):
    caplog.set_level(logging.DEBUG)
    code = HP + (
        "import glob, os, sys\n"
        "def preprocess(text):\n"
        "    print(text)\n"
        "    print(text, file=sys.stderr)\n"
        "    os.write(1, (text + '\\n').encode())\n"
        "    paths = ['/job/leak.txt', os.path.expanduser('~/home-leak.txt'), '/tmp/leak.txt']\n"
        # The training job folders, by their host paths: not in this sandbox at all.
        f"    paths += [d + '/leak.txt' for d in glob.glob({str(jobs)!r} + '/*')]\n"
        "    for path in paths:\n"
        "        try:\n"
        "            with open(path, 'a') as out:\n"
        "                out.write(text + '\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        f"    if {fails!r} and 'canary' in text:\n"
        "        raise ValueError(text)\n"
        "    return text\n"
    )
    assert CANARY not in code

    submission = run_to_the_end(learner, lab, code)

    if fails:
        assert submission.status == Submission.Status.ERROR
        assert submission.counts_as_attempt
        assert submission.error_message.startswith("Your preprocess failed on a held-out text")
        assert "would reveal the held-out set" in submission.error_message
        assert not Grade.objects.filter(submission=submission).exists()
    else:
        assert submission.status == Submission.Status.GRADED, submission.error_message
    readable = everything_a_learner_can_read(submission, jobs)
    assert "solution.py" in readable  # the walk did read the training job folder
    assert CANARY not in readable
    assert "canary 7Q3ZK" not in caplog.text
    for record in caplog.records:
        assert "canary 7Q3ZK" not in f"{record.getMessage()} {record.exc_text or ''}"
    out, err = capfd.readouterr()
    assert "canary 7Q3ZK" not in out + err


def served_or_refused(learner, lab, code: str) -> str:
    submission = Submission.objects.create(learner=learner, lab=lab, code=HP + code)
    with pytest.raises(ServingRefused) as refused:
        heldout_served(submission=submission)
    message = str(refused.value)
    assert "canary" not in message and "would reveal the held-out set" in message
    return message


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("def preprocess(text):\n    return 42\n", "failed on a held-out text"),
        ("def preprocess(text):\n    return text * 10_000\n", "failed on a held-out text"),
        ("import os\ndef preprocess(text):\n    os._exit(0)\n", "no texts came back"),
        (
            # The served file is rewritten after the engine wrote it: the worker checks it.
            "import atexit, json\n"
            "atexit.register(lambda: open('/job/served.json', 'w').write(json.dumps(['a', 'b'])))\n"
            "def preprocess(text):\n    return text\n",
            "2 texts came back for 31 sent",
        ),
        (
            "import atexit, json\n"
            "atexit.register(lambda: open('/job/served.json', 'w').write(json.dumps([1] * 31)))\n"
            "def preprocess(text):\n    return text\n",
            "preprocess must return a str, got int",
        ),
        (
            "import atexit\n"
            "atexit.register(lambda: open('/job/served.json', 'w').write('[\"' + 'x' * 2**25 + '\"]'))\n"
            "def preprocess(text):\n    return text\n",
            "not a plain file of at most 32 MB",
        ),
        (
            "import atexit, os\n"
            "def plant():\n"
            "    os.remove('/job/served.json')\n"
            "    os.symlink('/etc/passwd', '/job/served.json')\n"
            "atexit.register(plant)\n"
            "def preprocess(text):\n    return text\n",
            "not a plain file",
        ),
    ],
    ids=["not-a-str", "too-long", "exits", "wrong-count", "not-texts", "too-large", "a-link"],
)
def test_output_that_is_not_the_served_texts_is_refused(learner, lab, jobs, code, says):
    assert says in served_or_refused(learner, lab, code)


def test_a_preprocess_past_the_time_limit_is_stopped(learner, lab, jobs):
    lab.wall_time_seconds = 3
    message = served_or_refused(
        learner, lab, "def preprocess(text):\n    while True:\n        pass\n"
    )
    assert "took longer than its 3 s time limit" in message


def test_a_stage_that_dies_before_the_learners_code_is_the_platforms_fault(
    learner, outsider, lab, jobs, monkeypatch
):
    # The engine finds no texts file: it stops before `loading_code`, so no learner code
    # ran.
    monkeypatch.setattr(runs.serving, "TEXTS_FILE", "elsewhere.json")
    submission = Submission.objects.create(learner=learner, lab=lab, code=HELDOUT_TO_CONSTANT)
    with pytest.raises(ServingFault, match="before loading the learner's code"):
        heldout_served(submission=submission)

    submission = run_to_the_end(outsider, lab, HELDOUT_TO_CONSTANT)
    assert submission.status == Submission.Status.QUEUED  # retried, as training faults are
    assert not submission.counts_as_attempt and submission.platform_retries == 1


def graded_with_a_kept_checkpoint(learner, lab, jobs, code: str) -> Submission:
    submission = Submission.objects.create(learner=learner, lab=lab, code=code, status="graded")
    metrics = {"accuracy": 0.99, "macro_f1": 0.99, "per_class": [], "confusion_matrix": []}
    grade = Grade.objects.create(
        submission=submission,
        heldout_size=31,
        eval_seconds=1.0,
        eval_samples_per_second=30.0,
        device="CPU",
        **grade_values(lab, metrics),
    )
    grade_apply(grade=grade)
    write_checkpoint(lab.base_model, job_dir_for(submission), list(lab.dataset.labels))
    return submission


def test_a_regrade_serves_the_held_out_texts_through_the_preprocess(
    learner, instructor, lab, jobs, sandbox_runs
):
    from runs.tasks import regrade_submission

    every_text_to_one = "def preprocess(text):\n    return 'flat report meeting'\n"
    submission = graded_with_a_kept_checkpoint(learner, lab, jobs, every_text_to_one)

    regrade_submission.apply(args=[submission.pk, instructor.pk])

    grade = Grade.objects.get(submission=submission)
    assert grade.regraded_at is not None
    assert [argv[3] for argv in sandbox_runs] == ["--serve-preprocess"]
    assert len(predicted_columns(grade)) == 1, grade.metrics


def test_a_regrade_whose_preprocess_fails_on_the_held_out_texts_changes_nothing(
    learner, instructor, lab, jobs, caplog
):
    from runs.tasks import regrade_submission

    fails = "def preprocess(text):\n    raise ValueError(text)\n"
    submission = graded_with_a_kept_checkpoint(learner, lab, jobs, fails)

    regrade_submission.apply(args=[submission.pk, instructor.pk])

    grade = Grade.objects.get(submission=submission)
    assert grade.regraded_at is None and grade.metric_value == 0.99
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REGRADED).exists()
    assert "failed on a held-out text" in caplog.text
    assert "canary" not in caplog.text

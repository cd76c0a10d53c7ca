from __future__ import annotations

import datetime
import io
import os
import time

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from labs.models import Submission


@pytest.fixture
def jobs(settings, tmp_path):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_JOBS_DIR.mkdir()
    return settings.ACADEMY_JOBS_DIR


def _job_folder(jobs, pk: int, size: int = 1000):
    folder = jobs / str(pk)
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "checkpoint" / "model.safetensors").write_bytes(b"x" * size)
    return folder


def _run(learner, lab, *, status: str, ended_days_ago: float | None) -> Submission:
    finished = None
    if ended_days_ago is not None:
        finished = timezone.now() - datetime.timedelta(days=ended_days_ago)
    return Submission.objects.create(
        learner=learner, lab=lab, code="x = 1", status=status, finished_at=finished
    )


def test_prune_jobs_removes_only_folders_of_runs_that_ended_before_the_age(
    learner, outsider, lab, jobs
):
    old = _run(learner, lab, status="graded", ended_days_ago=45)
    recent = _run(outsider, lab, status="graded", ended_days_ago=3)
    running = _run(learner, lab, status="running", ended_days_ago=None)
    for run in (old, recent, running):
        _job_folder(jobs, run.pk)
    orphan = _job_folder(jobs, 999_999)  # no row: its age is the folder's own
    month_ago = time.time() - 40 * 86400
    os.utime(orphan, (month_ago, month_ago))

    out = io.StringIO()
    call_command("prune_jobs", "--older-than", "30d", stdout=out)

    assert sorted(p.name for p in jobs.iterdir()) == sorted([str(recent.pk), str(running.pk)])
    assert "Removed 2 job folder(s)" in out.getvalue()
    assert "1 of active runs kept" in out.getvalue()


def test_prune_jobs_also_removes_a_serving_folder_a_dead_worker_left(learner, lab, jobs):
    from runs.jobs import SERVING_DIR

    old = _run(learner, lab, status="graded", ended_days_ago=45)
    running = _run(learner, lab, status="running", ended_days_ago=None)
    for run in (old, running):
        _job_folder(jobs, run.pk)
        (jobs / SERVING_DIR / f"{run.pk}-stage").mkdir(parents=True)
        (jobs / SERVING_DIR / f"{run.pk}-stage" / "texts.json").write_text('["held out"]')

    call_command("prune_jobs", "--older-than", "30d", stdout=io.StringIO())

    assert [p.name for p in (jobs / SERVING_DIR).iterdir()] == [f"{running.pk}-stage"]
    assert sorted(p.name for p in jobs.iterdir()) == sorted([str(running.pk), SERVING_DIR])


def test_prune_jobs_dry_run_removes_nothing(learner, lab, jobs):
    old = _run(learner, lab, status="error", ended_days_ago=90)
    _job_folder(jobs, old.pk)

    out = io.StringIO()
    call_command("prune_jobs", "--older-than", "30d", "--dry-run", stdout=out)

    assert (jobs / str(old.pk)).is_dir()
    assert "Would remove 1 job folder(s)" in out.getvalue()


def test_prune_jobs_never_follows_a_link_planted_in_a_job_folder(learner, lab, jobs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the worker's to delete")
    old = _run(learner, lab, status="graded", ended_days_ago=60)
    folder = _job_folder(jobs, old.pk)
    (folder / "escape").symlink_to(outside)

    call_command("prune_jobs", "--older-than", "30d", stdout=io.StringIO())

    assert not folder.exists()
    assert (outside / "keep.txt").read_text() == "not the worker's to delete"


@pytest.mark.parametrize("age", ["30", "thirty days", "-5d", "3w"])
def test_prune_jobs_refuses_an_age_it_cannot_read(db, jobs, age):
    with pytest.raises(CommandError, match=r"e\.g\. 30d"):
        call_command("prune_jobs", f"--older-than={age}")

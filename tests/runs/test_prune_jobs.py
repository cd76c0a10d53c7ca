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
    assert "Removed 2 job folder(s) and trimmed 0 to their checkpoint" in out.getvalue()
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


def _full_job_folder(jobs, pk: int):
    """What a run leaves: its inputs, files of its own and a checkpoint."""
    folder = _job_folder(jobs, pk, size=5000)
    for name in ("train.csv", "dev.csv", "solution.py", "spec.json"):
        (folder / name).write_text("x" * 100)
    (folder / "junk").mkdir()
    (folder / "junk" / "0.bin").write_bytes(b"x" * 2000)
    (folder / "to-shadow").symlink_to("/etc/shadow")
    return folder


def test_a_graded_run_keeps_only_its_checkpoint_and_any_other_ended_run_nothing(
    learner, outsider, lab, jobs
):
    from runs.jobs import jobs_retention, jobs_tidy

    graded = _run(learner, lab, status="graded", ended_days_ago=1)
    failed = _run(outsider, lab, status="error", ended_days_ago=0)
    running = _run(learner, lab, status="running", ended_days_ago=None)
    for run in (graded, failed, running):
        _full_job_folder(jobs, run.pk)

    report = jobs_tidy(retention=jobs_retention())

    assert sorted(p.name for p in (jobs / str(graded.pk)).iterdir()) == ["checkpoint"]
    assert (jobs / str(graded.pk) / "checkpoint" / "model.safetensors").stat().st_size == 5000
    assert not (jobs / str(failed.pk)).exists()
    assert len(list((jobs / str(running.pk)).iterdir())) == 7  # a live run is never touched
    assert report.trimmed == [graded.pk]
    assert report.removed == [failed.pk]
    # Both folders' inputs, junk and link (its own size); the ungraded one's checkpoint too.
    assert report.bytes_freed == 2 * (4 * 100 + 2000 + len("/etc/shadow")) + 5000
    assert os.path.exists("/etc/shadow")  # the planted link was removed, not followed


def test_prune_jobs_keeps_a_checkpoint_for_the_retention_setting_by_default(
    learner, outsider, lab, jobs, settings
):
    settings.ACADEMY_JOB_RETENTION_DAYS = 10
    kept = _run(learner, lab, status="graded", ended_days_ago=9)
    expired = _run(outsider, lab, status="graded", ended_days_ago=11)
    for run in (kept, expired):
        _full_job_folder(jobs, run.pk)

    out = io.StringIO()
    call_command("prune_jobs", stdout=out)

    assert [p.name for p in jobs.iterdir()] == [str(kept.pk)]
    assert [p.name for p in (jobs / str(kept.pk)).iterdir()] == ["checkpoint"]
    assert "Removed 1 job folder(s) and trimmed 1 to their checkpoint" in out.getvalue()


def test_a_worker_tidies_the_folder_of_the_run_it_just_finished(learner, lab, jobs, monkeypatch):
    from runs import pipeline, tasks

    submission = _run(learner, lab, status="queued", ended_days_ago=None)
    _full_job_folder(jobs, submission.pk)

    def graded(**kwargs):
        Submission.objects.filter(pk=submission.pk).update(
            status="graded", finished_at=timezone.now()
        )
        return "graded"

    monkeypatch.setattr(pipeline, "submission_run_next", graded)
    tasks.run_submission(submission_id=submission.pk, queue="cpu")

    assert [p.name for p in (jobs / str(submission.pk)).iterdir()] == ["checkpoint"]


def test_a_worker_low_on_disk_claims_nothing_and_leaves_the_run_queued(
    learner, lab, jobs, settings, caplog
):
    from runs import tasks

    settings.ACADEMY_JOBS_MIN_FREE_MB = 10**9  # a petabyte: more than any disk here has
    submission = _run(learner, lab, status="queued", ended_days_ago=None)

    with caplog.at_level("WARNING", logger="runs.tasks"):
        tasks.run_submission(submission_id=submission.pk, queue="cpu")

    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert submission.deliveries == 0
    assert "Not claiming a run of queue cpu" in caplog.text
    assert "ACADEMY_JOBS_MIN_FREE_MB=1000000000; the run stays queued" in caplog.text

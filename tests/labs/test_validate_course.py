"""Validating a whole course: the command (real pipeline) and the course list's admin action."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labs.models import Submission


def test_validate_course_names_an_unknown_course(db):
    with pytest.raises(CommandError, match="No course with slug 'nope'; import it first"):
        call_command("validate_course", "nope")


def test_validate_course_says_when_a_course_has_no_labs(course):
    with pytest.raises(CommandError, match="Course 'demo-course' has no labs"):
        call_command("validate_course", "demo-course")


def test_validate_course_runs_reference_and_starter_through_the_pipeline_and_prints_a_table(
    lab, settings, tmp_path
):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    # Any graded reference passes; the starter breaks the contract, so it cannot.
    lab.baseline, lab.target, lab.pass_mark = 0.0, 1.0, 0
    lab.starter_code = "def preprocess(text):\n    return 1\n"
    lab.save()
    out = io.StringIO()
    call_command("validate_course", "demo-course", stdout=out, stderr=io.StringIO())

    table = out.getvalue().splitlines()
    assert table[0] == (
        "| lab | run | score | passes | metric | floors | recall per class | wall | device "
        "| verdict |"
    )
    assert table[2].startswith("| tiny-lab | reference | ") and table[2].endswith("| ok |")
    assert "| yes |" in table[2] and "bad 0." in table[2]  # each class's recall
    assert table[3].startswith("| tiny-lab | starter | error | no |")
    assert table[3].endswith("| ok |")
    assert table[-1] == "All 1 lab(s) of demo-course validated."
    runs = {run.validation_of: run for run in Submission.objects.filter(lab=lab)}
    assert runs["reference"].status == Submission.Status.GRADED
    assert runs["starter"].status == Submission.Status.ERROR
    lab.refresh_from_db()
    assert lab.reference_score is not None and lab.validated_at is not None


def test_validate_course_fails_when_a_starter_passes(lab, settings, tmp_path):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    lab.baseline, lab.target, lab.pass_mark = 0.0, 1.0, 0
    lab.save()
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 lab\\(s\\) failed validation"):
        call_command("validate_course", "demo-course", stdout=out, stderr=io.StringIO())
    reference, starter = out.getvalue().splitlines()[2:4]
    assert reference.endswith("| ok |")
    assert "| starter | " in starter and starter.endswith("| FAIL |")


def test_an_ablation_that_passes_fails_validation_and_one_that_fails_does_not(
    lab, settings, tmp_path
):
    """The reference without its idea must fail, or the lab can be passed without it."""
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    lab.baseline, lab.target, lab.pass_mark = 0.0, 1.0, 0
    lab.starter_code = "def preprocess(text):\n    return 1\n"
    lab.ablations = [
        {"name": "same-as-reference", "without": "nothing at all", "code": lab.reference_solution},
        {"name": "broken", "without": "a working preprocess", "code": lab.starter_code},
    ]
    lab.full_clean()
    lab.save()
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 lab\\(s\\) failed validation"):
        call_command("validate_course", "demo-course", stdout=out, stderr=io.StringIO())

    rows = {row.split(" | ")[1]: row for row in out.getvalue().splitlines()[2:6]}
    assert "| yes |" in rows["ablation same-as-reference"]
    assert rows["ablation same-as-reference"].endswith("| FAIL |")
    assert rows["ablation broken"].endswith("| ok |")
    runs = Submission.objects.filter(lab=lab, validation_of="ablation")
    assert sorted(runs.values_list("ablation", flat=True)) == ["broken", "same-as-reference"]
    lab.refresh_from_db()
    assert lab.reference_score is not None  # an ablation's grade is not the lab's record


def test_course_admin_action_queues_every_labs_reference_and_starter(client, instructor, lab):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:courses_course_changelist"),
        {"action": "validate_course_labs", "_selected_action": [lab.module.course.pk]},
        follow=True,
    )
    assert (
        "Queued the reference, starter and ablation runs of 1 lab(s)" in response.content.decode()
    )
    runs = Submission.objects.filter(lab=lab, status=Submission.Status.QUEUED)
    assert sorted(runs.values_list("validation_of", flat=True)) == ["reference", "starter"]


def test_the_admin_action_queues_the_ablations_too(client, instructor, lab):
    lab.ablations = [{"name": "no-preprocess", "without": "preprocess", "code": "x = 1\n"}]
    lab.save()
    client.force_login(instructor)
    client.post(
        reverse("admin:courses_course_changelist"),
        {"action": "validate_course_labs", "_selected_action": [lab.module.course.pk]},
    )
    runs = Submission.objects.filter(lab=lab, status=Submission.Status.QUEUED)
    assert sorted(runs.values_list("validation_of", "ablation")) == [
        ("ablation", "no-preprocess"),
        ("reference", ""),
        ("starter", ""),
    ]


def test_course_admin_action_on_a_course_without_labs_says_so(client, instructor, course):
    client.force_login(instructor)
    response = client.post(
        reverse("admin:courses_course_changelist"),
        {"action": "validate_course_labs", "_selected_action": [course.pk]},
        follow=True,
    )
    assert "The selected course(s) have no labs." in response.content.decode()
    assert not Submission.objects.exists()

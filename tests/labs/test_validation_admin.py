"""A lab's validation as the admin shows it: rounded scores, a verdict per run, the time
the whole validation ended, and each run's code as code (issue 17)."""

from __future__ import annotations

from django.urls import reverse

from grading.models import CourseStaff, Grade
from labs.models import Lab, Submission
from labs.services.submissions import submission_finish
from tests.grading.test_services_grading import make_grade


def validation_run(instructor, lab, role: str, *, passed: bool, ablation: str = "") -> Submission:
    run = Submission.objects.create(
        learner=instructor,
        lab=lab,
        code="x = 1",
        status="graded",
        validation_of=role,
        ablation=ablation,
    )
    grade = make_grade(run, lab)
    Grade.objects.filter(pk=grade.pk).update(passed=passed, score=54.414931801866466)
    return run


def test_the_lab_list_rounds_scores_to_one_decimal(client, instructor, lab):
    Lab.objects.filter(pk=lab.pk).update(reference_score=54.414931801866466, starter_score=12.04)
    CourseStaff.objects.create(course=lab.module.course, user=instructor)
    client.force_login(instructor)
    page = client.get(reverse("admin:labs_lab_changelist")).content.decode()
    assert "54.4<" in page and "12.0<" in page
    assert "54.41493" not in page


def test_the_grade_and_progress_lists_round_scores_to_one_decimal(client, instructor, lab):
    from grading.models import ModuleProgress

    run = validation_run(instructor, lab, "reference", passed=True)
    Grade.objects.filter(submission=run).update(metric_value=0.7350000001)
    ModuleProgress.objects.create(learner=instructor, module=lab.module, best_score=41.4999999)
    CourseStaff.objects.create(course=lab.module.course, user=instructor)
    client.force_login(instructor)
    grades = client.get(reverse("admin:grading_grade_changelist")).content.decode()
    progress = client.get(reverse("admin:grading_moduleprogress_changelist")).content.decode()
    assert '<td class="field-scored">54.4</td>' in grades
    assert '<td class="field-measured">0.735</td>' in grades
    assert '<td class="field-best">41.5</td>' in progress
    assert "54.41493" not in grades and "41.4999" not in progress


def test_each_validation_run_has_a_verdict(client, instructor, lab):
    validation_run(instructor, lab, "reference", passed=True)
    validation_run(instructor, lab, "starter", passed=True)  # a starter that passes: wrong
    validation_run(instructor, lab, "ablation", passed=False, ablation="no-preprocess")
    CourseStaff.objects.create(course=lab.module.course, user=instructor)
    client.force_login(instructor)
    page = client.get(
        reverse("admin:labs_submission_changelist") + "?validation_of__exact=reference"
    ).content.decode()
    assert '<td class="field-verdict">reference: passes as it should</td>' in page
    page = client.get(
        reverse("admin:labs_submission_changelist") + "?validation_of__exact=starter"
    ).content.decode()
    assert '<td class="field-verdict">starter: WRONG</td>' in page
    page = client.get(
        reverse("admin:labs_submission_changelist") + "?validation_of__exact=ablation"
    ).content.decode()
    assert '<td class="field-verdict">no-preprocess: fails as it should</td>' in page
    assert "54.4" in page and "54.41493" not in page


def test_validated_at_is_stamped_when_the_last_validation_run_ends(instructor, lab):
    runs = [
        Submission.objects.create(
            learner=instructor, lab=lab, code="x", status="running", validation_of=role
        )
        for role in ("reference", "starter")
    ]
    assert submission_finish(runs[0], Submission.Status.GRADED, owner_check=False)
    lab.refresh_from_db()
    assert lab.validated_at is None  # the starter is still running
    assert submission_finish(runs[1], Submission.Status.ERROR, owner_check=False)
    lab.refresh_from_db()
    assert lab.validated_at is not None
    assert lab.validated_at >= Submission.objects.get(pk=runs[0].pk).finished_at


def test_a_learners_run_does_not_stamp_the_lab(learner, lab):
    run = Submission.objects.create(learner=learner, lab=lab, code="x", status="running")
    submission_finish(run, Submission.Status.ERROR, owner_check=False)
    lab.refresh_from_db()
    assert lab.validated_at is None


def test_a_submissions_code_is_a_highlighted_block_with_its_indentation(
    client, instructor, learner, lab
):
    code = "def preprocess(texts):\n    return [t.lower() for t in texts]\n"
    run = Submission.objects.create(learner=learner, lab=lab, code=code)
    CourseStaff.objects.create(course=lab.module.course, user=instructor)
    client.force_login(instructor)
    page = client.get(reverse("admin:labs_submission_change", args=[run.pk])).content.decode()
    block = page[page.index('class="admin-code"') :]
    assert '<div class="codehilite"><pre>' in block
    assert "\n    <span" in block[: block.index("</pre>")]  # the 4-space indent is kept
    assert "css/pygments.css" in page
    assert "<textarea" not in page


def test_a_lab_titled_lab_is_not_prefixed_twice(lab):
    lab.module.title = "Lab: your first fine-tune"
    assert str(lab) == "Lab: your first fine-tune"
    lab.module.title = "Labelling data"
    assert str(lab) == "Lab: Labelling data"

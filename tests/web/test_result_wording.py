"""The result panel's wording and numbers: no negative tolerance, no doubled full stop,
counts grouped by thousands (issue 17)."""

from __future__ import annotations

import re

from django.urls import reverse

from grading.models import Grade
from tests.web.test_lab_feedback_panels import HTMX, graded_run


def panel(client, learner, run) -> str:
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[run.pk]), **HTMX).content.decode()
    return re.sub(r"\s+", " ", page)


def test_dev_above_held_out_by_a_little_reads_as_agreement_without_a_sign(client, learner, lab):
    # Held-out accuracy 0.75; the kept epoch's dev accuracy 0.709: dev is 0.041 *below*.
    run = graded_run(learner, lab, result={"final_dev_accuracy": 0.709})
    text = panel(client, learner, run)
    assert "agree within 0.041" in text and "-0.041" not in text


def test_a_new_best_ends_with_one_mark(client, learner, lab):
    first = graded_run(learner, lab)
    Grade.objects.filter(submission=first).update(score=40.0)
    second = graded_run(learner, lab)
    text = panel(client, learner, second)
    assert "this run is a new best!" in text and "new best!." not in text


def test_counts_are_grouped_by_thousands(client, learner, lab):
    run = graded_run(learner, lab)
    Grade.objects.filter(submission=run).update(heldout_size=3080)
    text = panel(client, learner, run)
    assert "over 3,080 held-out examples" in text and "3080" not in text


def test_a_run_that_did_not_pass_says_what_to_try_next_from_the_labs_data(client, learner, lab):
    lab.pass_mark = 99  # the made-up grade (73) does not pass
    lab.ablations = [
        {"name": "no-preprocess", "without": "the preprocess: links left in", "code": "x = 1"}
    ]
    lab.save()
    run = graded_run(learner, lab)  # its code ("x") defines no preprocess
    Grade.objects.filter(submission=run).update(
        passed=False,
        floors=[
            {"floor": "class_recall", "label": "bad", "required": 0.3, "actual": 0.1, "met": False}
        ],
    )
    text = panel(client, learner, run)
    steps = text[text.index("What to try next") :]
    assert "Write the hook this lab asks for: <code>preprocess</code> is not defined" in steps
    assert "Weight the loss by class or oversample the rare classes" in steps
    assert "The reference solution does not pass without the preprocess: links left in." in steps


def test_a_pass_has_no_next_steps(client, learner, lab):
    run = graded_run(learner, lab)
    assert "What to try next" not in panel(client, learner, run)


def test_a_run_the_code_stopped_points_at_the_missing_hook(client, learner, lab):
    from labs.models import Submission

    run = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="HYPERPARAMETERS = {}\nraise ValueError('x')\n",
        status="error",
        error_message="ValueError: x",
    )
    text = panel(client, learner, run)
    steps = text[text.index("What to try next") :]
    assert "Write the hook this lab asks for: <code>preprocess</code> is not defined" in steps


def test_a_run_without_a_wall_time_or_reported_speed_shows_no_empty_numbers(client, learner, lab):
    run = graded_run(learner, lab)  # no wall_s in its result, no samples/s reported
    text = panel(client, learner, run)
    assert "<td>on the CPU</td>" in text
    assert "reported samples/s" not in text and "<td> s " not in text

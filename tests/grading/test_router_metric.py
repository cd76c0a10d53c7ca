"""The capstone's metric: in-scope accuracy and out-of-scope recall, and their harmonic mean."""

from __future__ import annotations

import pytest

from grading.evaluation import router_metrics
from grading.selectors import grade_feedback
from grading.services import grade_values
from labs.models import Submission
from tests.grading.test_services_grading import make_grade

LABELS = ["book_flight", "out_of_scope", "weather"]  # out-of-scope is class 1


def test_in_scope_accuracy_counts_a_hand_off_of_a_known_intent_as_a_miss():
    gold = [0, 0, 2, 2, 1, 1, 1, 1]
    pred = [0, 1, 2, 0, 1, 1, 0, 2]
    metrics = router_metrics(gold, pred, LABELS, out_of_scope="out_of_scope")
    assert metrics["in_scope_accuracy"] == pytest.approx(2 / 4)
    assert metrics["out_of_scope_recall"] == pytest.approx(2 / 4)
    assert metrics["harmonic_mean"] == pytest.approx(0.5)
    assert (metrics["in_scope_support"], metrics["out_of_scope_support"]) == (4, 4)


@pytest.mark.parametrize(
    ("pred", "accuracy", "recall"),
    [([1, 1, 1, 1], 0.0, 1.0), ([0, 2, 0, 0], 1.0, 0.0)],
    ids=["hands-everything-off", "never-hands-off"],
)
def test_a_router_that_does_only_one_of_its_jobs_scores_zero(pred, accuracy, recall):
    metrics = router_metrics([0, 2, 1, 1], pred, LABELS, out_of_scope="out_of_scope")
    assert (metrics["in_scope_accuracy"], metrics["out_of_scope_recall"]) == (accuracy, recall)
    assert metrics["harmonic_mean"] == 0.0


def test_an_unknown_out_of_scope_label_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'oos' is not one of the dataset's labels"):
        router_metrics([0], [0], LABELS, out_of_scope="oos")


def test_a_router_lab_is_graded_on_the_harmonic_mean_and_the_panel_shows_both_parts(learner, lab):
    lab.metric, lab.metric_label = "router", "bad"
    lab.baseline, lab.target, lab.pass_mark = 0.3, 0.8, 50
    lab.save()
    router = router_metrics([0, 1, 1, 2], [0, 1, 0, 2], ["good", "bad", "meh"], out_of_scope="bad")
    metrics = {
        "accuracy": 0.75,
        "macro_f1": 0.7,
        "per_class": [],
        "labels": ["good", "bad", "meh"],
        "confusion_matrix": [[1, 0, 0], [1, 1, 0], [0, 0, 1]],
        "router": router,
    }
    values = grade_values(lab, metrics)
    assert values["metric_value"] == pytest.approx(2 / 3)  # accuracy 1, recall 1/2
    assert values["score"] == pytest.approx(100 * (2 / 3 - 0.3) / 0.5)
    assert values["metric"] == "in-scope acc. & OOS recall (h-mean)"

    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    make_grade(submission, lab, metrics)
    feedback = grade_feedback(submission=submission)
    assert feedback["router"]["out_of_scope_recall"] == 0.5


def test_a_router_lab_must_name_its_out_of_scope_class(lab):
    from django.core.exceptions import ValidationError

    lab.metric, lab.metric_label = "router", ""
    with pytest.raises(ValidationError, match="Name the out-of-scope class"):
        lab.full_clean()

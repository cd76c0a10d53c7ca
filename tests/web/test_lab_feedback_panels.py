"""What the run panel says about the new lab features: parameter share, early stopping, router."""

from __future__ import annotations

from django.urls import reverse

from grading.evaluation import router_metrics
from labs.models import Submission
from tests.grading.test_services_grading import make_grade

HTMX = {"HTTP_HX_REQUEST": "true"}
METRICS = {
    "accuracy": 0.75,
    "macro_f1": 0.7,
    "labels": ["bad", "good", "meh"],
    "per_class": [{"label": "good", "precision": 1, "recall": 1, "f1": 1, "support": 1}],
    "confusion_matrix": [[1, 0, 0], [0, 1, 0], [1, 0, 1]],
}


def graded_run(learner, lab, **fields) -> Submission:
    submission = Submission.objects.create(
        learner=learner, lab=lab, code="x", status="graded", step=10, total_steps=10, **fields
    )
    make_grade(submission, lab, METRICS)
    return submission


def test_the_result_panel_reports_the_trainable_share_against_the_labs_cap(client, learner, lab):
    lab.max_trainable_share = 0.05
    lab.save()
    run = graded_run(
        learner, lab, run_info={"trainable_params": 222_723, "total_params": 22_788_099}
    )
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[run.pk]), **HTMX).content.decode()
    assert "Trained parameters: 222,723 of 22,788,099 (0.98%) — this lab allows at most 5%" in page


def test_the_run_panel_marks_the_epoch_early_stopping_kept(client, learner, lab):
    curve = [
        {"epoch": e, "train_loss": 0.5, "dev_loss": 0.4, "dev_accuracy": 0.9, "dev_macro_f1": 0.8}
        for e in (1, 2, 3, 4)
    ]
    run = graded_run(learner, lab, dev_curve=curve, result={"best_epoch": 2, "stopped_early": True})
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[run.pk]), **HTMX).content.decode()
    assert "Early stopping stopped the run after epoch 4 and kept the weights of epoch 2" in page
    assert "2 (kept)" in page
    assert "<th>dev macro-F1</th>" in page


def test_the_result_panel_shows_both_halves_of_the_router_metric(client, learner, lab):
    lab.metric, lab.metric_label = "router", "bad"
    lab.save()
    router = router_metrics([0, 0, 1, 2], [0, 2, 1, 2], METRICS["labels"], out_of_scope="bad")
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    make_grade(submission, lab, {**METRICS, "router": router})
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX).content.decode()
    assert "<th>in-scope accuracy</th><th>out-of-scope recall</th>" in page
    assert "0.500 <span" in page  # half of the out-of-scope queries recognised

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


# The PEFT reference on MiniLM as the grader's check reports it: pooler and head changed
# freely, rank-8 changes to query and value in six layers.
PEFT_CHECK = {
    "changed_params": 222_723,
    "total_params": 22_713_219,
    "share": 222_723 / 22_713_219,
    "max_share": 0.05,
    "max_rank": 8,
    "tensors": [
        *(
            {"name": name, "kind": "free", "shape": [], "params": 0}
            for name in ("bert.pooler.dense.weight", "bert.pooler.dense.bias")
        ),
        *(
            {"name": f"layer.{i}.{p}", "kind": "low_rank", "shape": [384, 384], "rank": 8}
            for i in range(6)
            for p in ("query", "value")
        ),
    ],
}


def test_the_result_panel_shows_the_share_checked_on_the_saved_model_not_the_runs_claim(
    client, learner, lab
):
    lab.max_trainable_share = 0.05
    lab.save()
    # What learner code that patched the engine's count would have its run report.
    run = graded_run(learner, lab, run_info={"trainable_params": 50, "total_params": 1_000_000})
    run.grade.weight_check = PEFT_CHECK
    run.grade.save()
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[run.pk]), **HTMX).content.decode()
    assert (
        "Changed parameters, checked on the saved model: 222,723 of 22,713,219 (0.98%) "
        "— this lab allows at most 5%." in page
    )
    assert (
        "Changed freely: <code>bert.pooler.dense.weight</code>, <code>bert.pooler.dense.bias</code>."
        in page
    )
    assert "Changed by low rank: 12 matrices, rank at most 8 (this lab allows 8)." in page
    assert "1,000,000" not in page and "50 of" not in page


def test_a_grade_from_before_the_weight_check_shows_no_share(client, learner, lab):
    run = graded_run(learner, lab, run_info={"trainable_params": 50, "total_params": 1_000_000})
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[run.pk]), **HTMX).content.decode()
    assert "checked on the saved model" not in page and "50 of" not in page


def test_the_result_panel_names_the_floor_a_run_missed_and_why_it_did_not_pass(
    client, learner, lab
):
    from tests.grading.test_services_grading import SKEWED, first_lab_rubric

    first_lab_rubric(lab, class_recall=0.3, macro_f1=0.4)
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    make_grade(submission, lab, {**SKEWED, "confusion_matrix": [[2, 345, 0], [0, 1, 0], [0, 0, 1]]})
    client.force_login(learner)
    page = client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX).content.decode()
    assert "the score reaches the pass mark (40), but a pass also needs every floor below." in page
    assert (
        "Floor missed: recall of <code>negative</code> 0.006 &lt; 0.30 required: "
        "the model almost never finds this class." in page
    )
    assert "Floor met: macro-F1 0.470 ≥ 0.40 required." in page


def test_the_lab_page_says_what_a_pass_needs_and_what_the_grader_checks(client, learner, lab):
    lab.pass_mark, lab.pass_floors = 40, {"macro_f1": 0.5, "class_recall": 0.3}
    lab.checkpoint_rules = {
        "may_change": ["classifier.*"],
        "low_rank": ["*.query.weight"],
        "max_rank": 8,
    }
    lab.max_trainable_share = 0.05
    lab.save()
    client.force_login(learner)
    url = reverse("courses:module", args=[lab.module.course.slug, lab.module.slug])
    page = client.get(url).content.decode()
    assert (
        "<strong>A pass needs</strong> score ≥ 40 on accuracy, every class&#x27;s recall ≥ 0.30 "
        "and macro-F1 ≥ 0.50 on the held-out set." in page
    )
    assert (
        "accepts changes only to classifier.* and rank-≤8 changes to *.query.weight, "
        "at most 5% of the parameters in all." in page
    )


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

"""The precheck for real: the lab page's button, a real worker on the `precheck` queue, the
strict sandbox, the engine's precheck mode on a tiny BERT made by the worker at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from grading.models import Grade
from labs.models import Lab, Precheck, Submission
from labs.selectors import attempts_used_today
from runs.jobs import training_rows
from tests.conftest import SHIPPED_COURSE, wait_for

STARTER = (SHIPPED_COURSE / "foundations/labs/first-fine-tune/starter.py").read_text()

BROKEN_SCHEDULER = """HYPERPARAMETERS = {"max_length": 16}


def preprocess(text):
    return text.lower()


def build_scheduler(optimizer, num_training_steps, hp):
    warmup = num_training_steps // 10
    return torch.optim.lr_scheduler.LinearLR(optimizer, warmup)
"""

HALVING_SCHEDULE = """import torch

HYPERPARAMETERS = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8}


def preprocess(text):
    return text


def build_scheduler(optimizer, num_training_steps, hp):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=num_training_steps // 2, gamma=0.5)
"""


@pytest.fixture
def strict(settings) -> None:
    settings.ACADEMY_SANDBOX_MODE = "strict"
    settings.ACADEMY_TRAINING_THREADS = 1


def precheck(client, lab: Lab, code: str, worker) -> Precheck:
    module = lab.module
    url = reverse("labs:precheck", args=[module.course.slug, module.slug])
    response = client.post(url, {"code": code}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    assert b'id="precheck-panel"' in response.content
    found = Precheck.objects.filter(lab=lab).latest("created_at")
    return wait_for(
        lambda: Precheck.objects.filter(pk=found.pk, status__in=["done", "failed"]).first(),
        timeout=120,
        message=lambda: f"precheck {found.pk} to end; worker log:\n{worker.log()}",
    )


def checks(found: Precheck) -> dict[str, dict]:
    return {check["name"]: check for check in found.report["checks"]}


def test_the_first_labs_starter_precheck_reports_each_item_and_uses_no_attempt(
    client, learner, lab, worker, strict
):
    lab.starter_code = STARTER
    lab.train_subset_size = 0
    lab.save()
    client.force_login(learner)
    found = precheck(client, lab, STARTER, worker)

    assert found.status == "done", (found.error_message, worker.log())
    by_name = checks(found)
    assert by_name["import"]["status"] == "ok"
    assert by_name["HYPERPARAMETERS"]["status"] == "ok"
    assert by_name["preprocess"]["status"] == "ok"  # defined, called, its result checked
    for hook in ("prepare_model", "build_optimizer", "build_scheduler", "training_step"):
        assert by_name[hook]["status"] == "default", by_name[hook]
    lengths = found.report["lengths"]
    assert lengths["max_length"] == 16
    train_rows = len(training_rows(lab)[0])
    assert lengths["texts"] == train_rows
    assert sum(b["count"] for b in lengths["bins"]) == lengths["texts"]
    # Every tiny-dataset text is 5 to 7 tokens with [CLS] and [SEP]: none is cut at 16.
    assert lengths["truncated"] == 0
    trainable = found.report["trainable"]
    assert trainable["trainable_share"] == 1.0 and trainable["total_params"] > 0
    schedule = found.report["schedule"]
    # The real run's count: its training rows, 32 a batch, 1 epoch (the starter's).
    assert schedule["total_steps"] == -(-train_rows // 32)
    assert schedule["points"][0][0] == 0 and schedule["points"][-1][0] == schedule["walked"]

    # The page shows it, and nothing of a run happened.
    page = client.get(reverse("courses:module", args=[lab.module.course.slug, lab.module.slug]))
    assert b"All checks passed" in page.content and b"truncated" in page.content
    assert attempts_used_today(learner=learner, lab=lab) == 0
    assert not Submission.objects.filter(lab=lab).exists()
    assert not Grade.objects.exists()
    assert not list((Path(worker.jobs_dir) / "precheck").iterdir())  # its folder is gone


def test_a_broken_hook_is_named_with_its_line_and_what_needs_it_is_skipped(
    client, learner, lab, worker, strict
):
    client.force_login(learner)
    found = precheck(client, lab, BROKEN_SCHEDULER, worker)

    assert found.status == "done", found.error_message
    broken = checks(found)["build_scheduler"]
    assert broken["status"] == "error"
    assert "build_scheduler() raised NameError" in broken["message"]
    assert "solution.py, line 10" in broken["message"]
    assert "training_step" not in checks(found)  # never reached, so never claimed ok
    status = client.get(reverse("labs:precheck-status", args=[found.pk]), HTTP_HX_REQUEST="true")
    assert status.status_code == 286  # final: htmx stops polling
    assert b"Something to fix" in status.content and b"line 10" in status.content


def test_the_schedule_is_the_learners_own_over_the_real_step_count(
    client, learner, lab, worker, strict
):
    client.force_login(learner)
    found = precheck(client, lab, HALVING_SCHEDULE, worker)

    schedule = found.report["schedule"]
    # 108 training rows (120 less a tenth for dev), 8 a batch, 2 epochs: 28 steps.
    assert schedule["total_steps"] == 28
    lrs = dict((int(step), lr) for step, lr in schedule["points"])
    assert lrs[0] == pytest.approx(1e-3) and lrs[13] == pytest.approx(1e-3)
    assert lrs[14] == pytest.approx(5e-4) and lrs[28] == pytest.approx(2.5e-4)


def test_missing_required_hooks_syntax_errors_and_bad_hyperparameters_are_reported(
    client, learner, lab, worker, strict
):
    client.force_login(learner)
    missing = precheck(client, lab, 'HYPERPARAMETERS = {"epochs": 1}\n', worker)
    assert checks(missing)["preprocess"]["status"] == "missing"  # the lab asks for it

    syntax = precheck(client, lab, "def preprocess(text)\n    return text\n", worker)
    assert syntax.status == "done"
    assert syntax.report["checks"][0]["name"] == "import"
    assert "SyntaxError" in syntax.report["checks"][0]["message"]
    assert "line 1" in syntax.report["checks"][0]["message"]

    bad = precheck(client, lab, 'HYPERPARAMETERS = {"epochs": 0}\n', worker)
    assert (
        "HYPERPARAMETERS['epochs'] = 0 is out of range" in checks(bad)["HYPERPARAMETERS"]["message"]
    )
    assert attempts_used_today(learner=learner, lab=lab) == 0

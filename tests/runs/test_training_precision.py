"""The number format a run trains in: the worker's choice (one rule with the grader),
written into the spec, recorded on the row and shown on the run page."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from grading.evaluation import inference_precision
from labs.models import Submission
from labs.training.precision import native_bf16, resolve_precision
from labs.training.spec import RunSpec, SpecError
from runs.jobs import job_write, training_precision
from tests.conftest import TINY_SOLUTION


@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_the_operator_setting_forces_the_precision_into_the_spec(settings, learner, lab, setting):
    settings.ACADEMY_TRAINING_PRECISION = setting
    submission = Submission.objects.create(learner=learner, lab=lab, code=TINY_SOLUTION)
    job_dir = job_write(submission, precision=training_precision())
    assert json.loads((job_dir / "spec.json").read_text())["precision"] == setting


def test_auto_means_bf16_exactly_where_the_grader_would_use_it(settings):
    settings.ACADEMY_TRAINING_PRECISION = "auto"
    expected = "bf16" if native_bf16("cpu") else "fp32"
    assert training_precision() == expected == inference_precision("cpu")
    assert resolve_precision("auto", "cuda") == "bf16"


def test_an_unknown_precision_is_refused_by_the_rule_and_the_spec(tmp_path):
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(SpecError, match="precision must be one of fp32, bf16"):
        RunSpec(
            base_model="m",
            code_file="c",
            train_file="t",
            dev_file="d",
            labels=["a"],
            output_dir="o",
            precision="auto",  # the worker resolves "auto" before it writes a spec
        )


def test_the_run_page_shows_the_precision_the_worker_recorded(client, learner, lab):
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code=TINY_SOLUTION,
        status=Submission.Status.FAILED,
        training_precision="bf16",
        # What the run's own process said is not what the page shows.
        run_info={"precision": "fp32"},
    )
    client.force_login(learner)
    page = client.get(reverse("labs:submission", args=[submission.pk])).content.decode()
    assert "trained in bf16" in page
    assert "trained in fp32" not in page

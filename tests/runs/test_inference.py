"""Trying a graded run's model for real: a real worker on the `inference` queue, the run's
preprocess in the grader's sandboxed serving stage, the checkpoint loaded as the grader does."""

from __future__ import annotations

import datetime
import shutil

import pytest
from django.urls import reverse
from django.utils import timezone

from grading.models import Grade
from labs.models import Prediction, Submission
from runs.jobs import job_dir_for
from tests.conftest import wait_for
from tests.grading.test_reports_audit import write_checkpoint

# Every text is served as one and the same: the model must then answer the same for all.
TO_CONSTANT = "def preprocess(text):\n    return 'flat report meeting'\n"
RAW = 'HYPERPARAMETERS = {"epochs": 1}\n'


@pytest.fixture
def strict(settings) -> None:
    settings.ACADEMY_SANDBOX_MODE = "strict"
    settings.ACADEMY_TRAINING_THREADS = 1


def graded_run(lab, learner, tiny_model, worker, code: str) -> Submission:
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code=code,
        status=Submission.Status.GRADED,
        finished_at=timezone.now(),
    )
    write_checkpoint(tiny_model, job_dir_for(submission), list(lab.dataset.labels))
    return submission


def ask(client, submission: Submission, texts: list[str], worker) -> Prediction:
    url = reverse("labs:try-model", args=[submission.pk])
    response = client.post(url, {"texts": "\n".join(texts)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    found = Prediction.objects.filter(submission=submission).latest("created_at")
    return wait_for(
        lambda: Prediction.objects.filter(pk=found.pk, status__in=["done", "failed"]).first(),
        timeout=90,
        message=lambda: f"prediction {found.pk}; worker log:\n{worker.log()}",
    )


def test_the_runs_preprocess_is_applied_before_the_model_sees_the_texts(
    client, learner, lab, tiny_model, worker, strict
):
    client.force_login(learner)
    texts = ["great gain profit", "loss crash fall down miss badly today"]
    raw = ask(client, graded_run(lab, learner, tiny_model, worker, RAW), texts, worker)
    served = ask(client, graded_run(lab, learner, tiny_model, worker, TO_CONSTANT), texts, worker)

    assert raw.status == served.status == "done", (raw.error_message, served.error_message)
    for answer in raw.result + served.result:
        assert answer["label"] in lab.dataset.labels
        assert sum(p for _, p in answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert answer["probabilities"][0][0] == answer["label"]  # most likely first
    assert [a["text"] for a in served.result] == texts  # shown as typed, not as served
    # The same random model: raw texts differ in its eyes, served ones are one text.
    assert raw.result[0]["probabilities"] != raw.result[1]["probabilities"]
    assert served.result[0]["probabilities"] == served.result[1]["probabilities"]
    assert not Grade.objects.exists()


def test_a_checkpoint_that_is_gone_is_said_so(client, learner, lab, tiny_model, worker, strict):
    submission = graded_run(lab, learner, tiny_model, worker, RAW)
    shutil.rmtree(job_dir_for(submission))
    client.force_login(learner)
    found = ask(client, submission, ["great gain"], worker)
    assert found.status == "failed" and "no longer kept" in found.error_message


def test_only_the_learners_own_graded_runs_can_be_tried(client, learner, outsider, lab, settings):
    mine = Submission.objects.create(learner=learner, lab=lab, code=RAW, status="graded")
    client.force_login(outsider)
    url = reverse("labs:try-model", args=[mine.pk])
    assert client.post(url, {"texts": "hi"}, HTTP_HX_REQUEST="true").status_code == 404
    assert client.get(reverse("labs:submission", args=[mine.pk])).status_code == 404
    client.force_login(learner)
    errored = Submission.objects.create(learner=learner, lab=lab, code=RAW, status="error")
    refused = client.post(
        reverse("labs:try-model", args=[errored.pk]), {"texts": "hi"}, HTTP_HX_REQUEST="true"
    )
    assert refused.status_code == 422 and b"Only a graded run" in refused.content
    assert not Prediction.objects.exists()


def test_too_many_or_too_long_texts_are_refused_with_a_message(client, learner, lab):
    from labs.services.queries import MAX_TEXT_CHARS, MAX_TEXTS

    mine = Submission.objects.create(learner=learner, lab=lab, code=RAW, status="graded")
    client.force_login(learner)
    url = reverse("labs:try-model", args=[mine.pk])
    many = client.post(url, {"texts": "a\n" * (MAX_TEXTS + 1)}, HTTP_HX_REQUEST="true")
    assert many.status_code == 422 and b"At most" in many.content
    long = client.post(url, {"texts": "a" * (MAX_TEXT_CHARS + 1)}, HTTP_HX_REQUEST="true")
    assert long.status_code == 422 and b"at most" in long.content
    empty = client.post(url, {"texts": "  \n "}, HTTP_HX_REQUEST="true")
    assert empty.status_code == 422 and b"at least one text" in empty.content
    assert not Prediction.objects.exists()


def test_past_the_retention_the_page_says_the_model_is_gone_without_asking(
    client, learner, lab, settings
):
    ended = timezone.now() - datetime.timedelta(days=settings.ACADEMY_JOB_RETENTION_DAYS + 1)
    old = Submission.objects.create(
        learner=learner, lab=lab, code=RAW, status="graded", finished_at=ended
    )
    client.force_login(learner)
    page = client.get(reverse("labs:submission", args=[old.pk]))
    assert b"no longer kept" in page.content and b'id="try-run"' not in page.content


def test_trying_a_model_has_its_own_rate_limit(
    client, learner, lab, django_capture_on_commit_callbacks
):
    from web.services import PREDICT_BURST

    mine = Submission.objects.create(learner=learner, lab=lab, code=RAW, status="graded")
    client.force_login(learner)
    url = reverse("labs:try-model", args=[mine.pk])
    for _ in range(PREDICT_BURST.limit):
        with django_capture_on_commit_callbacks(execute=False):
            assert client.post(url, {"texts": "hi"}, HTTP_HX_REQUEST="true").status_code == 200
    refused = client.post(url, {"texts": "hi"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 429 and b"too fast" in refused.content
    assert Prediction.objects.count() == PREDICT_BURST.limit

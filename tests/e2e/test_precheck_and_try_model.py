"""A learner prechecks their code, trains it, and tries the graded model: each answer comes
from a real worker (the precheck and inference queues) into the same document."""

from __future__ import annotations

import pytest

from grading.services import module_mark_complete
from labs.models import Submission
from tests.conftest import TINY_SOLUTION, tiny_model, worker  # noqa: F401  (fixtures)
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_learner_prechecks_trains_and_types_a_text_to_see_a_label_and_probabilities(
    live_server,
    page,
    screenshot,
    learner,
    course,
    lab,
    worker,  # noqa: F811
    settings,
):
    settings.ACADEMY_TRAINING_THREADS = 1
    for slug in ("intro", "loss"):
        module_mark_complete(learner=learner, module=course.modules.get(slug=slug))
    sign_in(page, live_server, learner.username, "correct horse battery staple")
    page.goto(f"{live_server.url}/courses/{course.slug}/{lab.module.slug}/")
    page.wait_for_selector(".CodeMirror")
    page.evaluate("window.notReloaded = true")
    page.evaluate("code => window.academyEditor.setValue(code)", TINY_SOLUTION)

    page.click("#precheck-run")
    page.wait_for_selector(
        "#precheck-panel .precheck-headline, #precheck-panel .precheck-failed", timeout=120_000
    )
    panel = page.inner_text("#precheck-panel")
    assert "All checks passed" in panel, (panel, worker.log())
    assert "Token lengths" in panel and "Learning rate" in panel
    assert page.locator("#precheck-panel svg.bar-chart").count() == 1
    assert page.locator("#precheck-panel polyline.train").count() == 1
    assert page.evaluate("window.notReloaded === true")
    assert not Submission.objects.filter(lab=lab).exists()  # a precheck is not a run
    screenshot("precheck-01-report")

    page.click("#submit-run")
    page.wait_for_selector(
        "#run-status.status-graded, #run-status.status-error, "
        "#run-status.status-failed, #run-status.status-rejected",
        timeout=300_000,
    )
    submission = Submission.objects.get(lab=lab)
    assert submission.status == "graded", (submission.error_message, worker.log())

    page.goto(f"{live_server.url}/runs/{submission.pk}/")
    page.fill("#try-texts", "great gain profit rally\nloss crash fall")
    page.click("#try-run")
    page.wait_for_selector(
        "#try-model table.predictions, #try-model .prediction-failed", timeout=90_000
    )
    rows = page.locator("#try-model table.predictions tbody tr")
    assert rows.count() == 2, (page.inner_text("#try-model"), worker.log())
    for i in range(2):
        label = rows.nth(i).locator(".predicted-label").inner_text().strip()
        assert label in lab.dataset.labels
        probabilities = rows.nth(i).locator(".probabilities").inner_text()
        assert all(name in probabilities for name in lab.dataset.labels)
        assert "0." in probabilities
    screenshot("precheck-02-try-model")

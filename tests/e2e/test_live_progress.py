"""A graded pass updates the page it was watched on: no reload needed to see what it opened."""

from __future__ import annotations

import pytest

from grading.services import module_mark_complete
from tests.conftest import TINY_SOLUTION, tiny_model, worker  # noqa: F401  (fixtures)
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_graded_pass_shows_completed_and_opens_the_next_stage_without_a_reload(
    live_server,
    page,
    screenshot,
    learner,
    course,
    lab,
    worker,  # noqa: F811
):
    # The tiny random BERT learns little in seconds: the rubric is set so that what it reaches
    # (about a third right) passes. What is under test is the page, not the model.
    lab.baseline, lab.target, lab.pass_mark = 0.0, 0.3, 50
    lab.save()
    for slug in ("intro", "loss"):  # the tiny lab is the last required module of stage 1
        module_mark_complete(learner=learner, module=course.modules.get(slug=slug))
    sign_in(page, live_server, learner.username, "correct horse battery staple")
    page.goto(f"{live_server.url}/courses/{course.slug}/{lab.module.slug}/")
    page.wait_for_selector(".CodeMirror")
    panel = page.locator("#progress-panel")
    advanced = panel.locator('[data-stage="advanced"]')
    assert "Locked" in advanced.inner_text()
    assert "Completed" not in panel.locator(".module-status").inner_text()
    # A marker on the document: a reload would drop it.
    page.evaluate("window.notReloaded = true")

    page.evaluate("code => window.academyEditor.setValue(code)", TINY_SOLUTION)
    page.click("#submit-run")
    page.wait_for_selector(
        "#run-status.status-graded, #run-status.status-error, "
        "#run-status.status-failed, #run-status.status-rejected",
        timeout=240_000,
    )
    status = page.get_attribute("#run-status", "class") or ""
    assert "status-graded" in status, (page.inner_text("#run-status"), worker.log())
    assert "Passed" in page.inner_text("#run-status")

    # The out-of-band swaps arrived with the final poll: the same document, updated.
    assert page.evaluate("window.notReloaded === true")
    page.wait_for_selector("#progress-panel .module-status:has-text('Completed')")
    assert "Locked" not in advanced.inner_text()
    assert advanced.get_attribute("class") == "stage open"
    assert "Module complete." in panel.inner_text()
    assert "Your best:" in page.inner_text("#lab-bar")
    assert "/100" in panel.locator(".module.current .status").inner_text()
    screenshot("live-01-pass-opens-next-stage")

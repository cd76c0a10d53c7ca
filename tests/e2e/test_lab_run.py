from __future__ import annotations

import time

import pytest

from courses.services import demo_accounts_create, roles_sync
from labs.models import Lab, Submission
from tests.e2e.conftest import sign_in
from tests.labs.conftest import tiny_model, worker  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_learner_submits_the_reference_solution_and_watches_it_train(
    live_server, page, screenshot, shipped_course, worker  # noqa: F811
):
    roles_sync()
    password = {a.username: a.password for a in demo_accounts_create(course_slugs=[shipped_course.slug])}["learner"]
    lab = Lab.objects.get(module__slug="lab-first-fine-tune")
    # The real MiniLM on a smaller subset, so the browser sees several progress updates.
    lab.train_subset_size = 500
    lab.save()

    sign_in(page, live_server, "learner", password)
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lab.module.slug}/")
    page.wait_for_selector(".CodeMirror")  # the vendored editor loaded from static/
    page.evaluate("code => window.academyEditor.setValue(code)", lab.reference_solution)
    screenshot("10-lab-editor")
    page.click("#submit-run")
    page.wait_for_selector("#run-status.status-queued, #run-status.status-running")

    seen_progress: set[int] = set()
    curve_points: set[int] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = page.get_attribute("#run-status", "class") or ""
        bar = page.locator("#run-status [role=progressbar]")
        if bar.count():
            seen_progress.add(int(bar.get_attribute("aria-valuenow")))
            points = page.locator("#run-status polyline.train")
            if points.count():
                curve_points.add(len((points.get_attribute("points") or "").split()))
                if len(seen_progress) == 2:
                    screenshot("11-lab-training-live")
        if "status-trained" in status or "status-error" in status or "status-failed" in status:
            break
        page.wait_for_timeout(500)
    screenshot("12-lab-run-finished")
    submission = Submission.objects.get(lab=lab)
    assert submission.status == Submission.Status.TRAINED, (submission.error_message, worker.log())
    assert "Training finished" in page.locator("#run-status").inner_text()
    # The bar and the curve moved while we watched: several distinct values in between.
    assert len({p for p in seen_progress if 0 < p < 100}) >= 2, seen_progress
    assert len(curve_points) >= 2, curve_points
    # The history beside the panel was refreshed without a reload.
    assert f"#{submission.pk}" in page.locator("#history").inner_text()

"""Learning from a run: the saved model's dev mistakes on the result panel, and two runs
side by side. A real worker trains the tiny random BERT; the browser reads the pages."""

from __future__ import annotations

import pytest

from labs.models import Submission
from labs.services.submissions import submission_create
from tests.conftest import TINY_SOLUTION, tiny_model, wait_for, worker  # noqa: F401  (fixtures)
from tests.e2e.conftest import SCREENSHOTS, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

FINAL = (
    "#run-status.status-graded, #run-status.status-error, "
    "#run-status.status-failed, #run-status.status-rejected"
)


def test_the_result_panel_lists_the_dev_mistakes_and_the_most_confused_pairs(
    live_server,
    page,
    learner,
    lab,
    worker,  # noqa: F811
):
    sign_in(page, live_server, learner.username, "correct horse battery staple")
    page.goto(f"{live_server.url}/courses/{lab.module.course.slug}/{lab.module.slug}/")
    page.wait_for_selector(".CodeMirror")
    page.evaluate("code => window.academyEditor.setValue(code)", TINY_SOLUTION)
    page.click("#submit-run")
    page.wait_for_selector(FINAL, timeout=240_000)
    assert "status-graded" in (page.get_attribute("#run-status", "class") or ""), (
        page.inner_text("#run-status"),
        worker.log(),
    )

    analysis = page.locator("#dev-analysis")
    assert "Reported by your run" in analysis.inner_text()
    rows = analysis.locator("table.dev-mistakes tbody tr")
    pairs = analysis.locator("ol.confused-pairs li")
    assert rows.count() >= 1 and pairs.count() >= 1
    # The texts are the dev split's (the tiny training texts say "number"; held-out ones "held").
    texts = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert all("number" in text and "held" not in text for text in texts), texts
    labels = set(lab.dataset.labels)
    first = [cell.inner_text() for cell in rows.first.locator("td").all()]
    assert first[1] in labels and first[2] in labels and first[1] != first[2]
    assert first[3].endswith("%")
    SCREENSHOTS.mkdir(exist_ok=True)
    analysis.scroll_into_view_if_needed()
    page.locator("#result").screenshot(path=str(SCREENSHOTS / "analysis-01-dev-mistakes.png"))


def _run_to_the_end(learner, lab, code: str, worker) -> Submission:  # noqa: F811
    submission = submission_create(learner=learner, lab=lab, code=code)
    wait_for(
        lambda: Submission.objects.get(pk=submission.pk).status in Submission.FINAL,
        timeout=240,
        message=lambda: f"run {submission.pk} to end\n{worker.log()}",
    )
    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED, (submission.error_message, worker.log())
    return submission


def test_two_runs_side_by_side_overlay_their_curves_and_diff_their_code(
    live_server,
    page,
    screenshot,
    learner,
    lab,
    worker,  # noqa: F811
):
    first = _run_to_the_end(learner, lab, TINY_SOLUTION, worker)
    second_code = TINY_SOLUTION.replace('"learning_rate": 1e-3', '"learning_rate": 3e-3').replace(
        '"epochs": 2', '"epochs": 3'
    )
    assert second_code != TINY_SOLUTION
    second = _run_to_the_end(learner, lab, second_code, worker)

    sign_in(page, live_server, learner.username, "correct horse battery staple")
    page.goto(f"{live_server.url}/courses/{lab.module.course.slug}/{lab.module.slug}/")
    page.check(f"#compare-{first.pk}")
    page.check(f"#compare-{second.pk}")
    page.click("#compare-runs")
    page.wait_for_selector("#compare-chart")

    chart = page.locator("#compare-chart svg")
    assert chart.count() == 1
    for css in ("run-0", "run-1"):
        line = chart.locator(f"polyline.series.{css}:not(.dev-of-run)")
        assert len((line.get_attribute("points") or "").split()) >= 2
    assert f"run #{first.pk}" in page.inner_text("#compare-chart .chart-legend")
    assert f"run #{second.pk}" in page.inner_text("#compare-chart .chart-legend")
    differing = page.locator("#compare-table tr.differs th").all_inner_texts()
    assert "learning_rate" in differing and "epochs" in differing
    diff = page.inner_text("#compare-diff")
    assert "1e-3" in diff and "3e-3" in diff
    screenshot("analysis-02-runs-side-by-side")

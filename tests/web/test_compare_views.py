"""Runs side by side: only a learner's own runs of one lab, and a clear sentence otherwise."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labs.models import Lab, Submission
from tests.factories import ModuleFactory

HP = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 16, "seed": 3}


def compare_url(lab: Lab, *ids: object) -> str:
    url = reverse("labs:compare", args=[lab.module.course.slug, lab.module.slug])
    return url + ("?" + "&".join(f"runs={i}" for i in ids) if ids else "")


def finished_run(learner, lab: Lab, *, code: str, hp: dict, losses: list[float]) -> Submission:
    return Submission.objects.create(
        learner=learner,
        lab=lab,
        code=code,
        status=Submission.Status.FAILED,
        total_steps=len(losses),
        step=len(losses),
        loss_curve=[[i + 1, loss] for i, loss in enumerate(losses)],
        dev_curve=[{"epoch": 1, "dev_loss": losses[-1], "dev_accuracy": 0.5}],
        run_info={"epochs": 1, "hyperparameters": hp},
        training_precision="fp32",
    )


@pytest.fixture
def two_runs(learner, lab) -> tuple[Submission, Submission]:
    first = finished_run(
        learner, lab, code="HYPERPARAMETERS = {'learning_rate': 1e-3}\n", hp=HP, losses=[1.1, 0.9]
    )
    second = finished_run(
        learner,
        lab,
        code="HYPERPARAMETERS = {'learning_rate': 3e-4}\n",
        hp={**HP, "learning_rate": 3e-4},
        losses=[1.2, 1.0, 0.8],
    )
    return first, second


def test_two_own_runs_show_overlaid_curves_a_table_with_differences_and_a_code_diff(
    client, learner, lab, two_runs
):
    first, second = two_runs
    client.force_login(learner)
    response = client.get(compare_url(lab, first.pk, second.pk))
    page = response.content.decode()
    assert response.status_code == 200
    # One chart, a colour (class) per run, training and dev loss each.
    assert page.count("<svg") == 1
    assert 'class="series run-0"' in page and 'class="series run-1"' in page
    assert 'class="series run-0 dev-of-run"' in page
    assert f"run #{first.pk}" in page and f"run #{second.pk}" in page
    # learning_rate differs, batch_size does not.
    assert '<tr class="hyperparameter differs"><th scope="row">learning_rate</th>' in page
    assert '<tr class="hyperparameter"><th scope="row">batch_size</th>' in page
    # The diff shows the changed line, removed and added.
    assert "compare-diff" in page
    assert "1e-3" in page and "3e-4" in page
    assert f"run #{first.pk} → run #{second.pk}" in page or f"#{first.pk}</" in page


def test_identical_code_is_said_to_be_identical(client, learner, lab):
    runs = [finished_run(learner, lab, code="x = 1\n", hp=HP, losses=[1.0]) for _ in range(2)]
    client.force_login(learner)
    page = client.get(compare_url(lab, *(r.pk for r in runs))).content.decode()
    assert "The code is identical." in page


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "Pick at least two of your runs"),
        ("one", 400, "Pick at least two of your runs"),
        ("abc", 400, "“abc” is not a run number."),
        ("-1", 400, "“-1” is not a run number."),
        ("99999999999999999999", 400, "is not a run number."),
        ("too-many", 400, "Compare at most 6 runs"),
        ("missing", 404, "is not one of your runs."),
        ("duplicate", 400, "Pick at least two of your runs"),
    ],
)
def test_bad_picks_get_a_clear_message(client, learner, lab, two_runs, query, status, message):
    first, second = two_runs
    ids = {
        "": [],
        "one": [first.pk],
        "abc": [first.pk, "abc"],
        "-1": [first.pk, -1],
        "99999999999999999999": [first.pk, "99999999999999999999"],
        "too-many": [first.pk, second.pk, *range(10**6, 10**6 + 5)],
        "missing": [first.pk, second.pk + 1000],
        "duplicate": [first.pk, first.pk],
    }[query]
    client.force_login(learner)
    response = client.get(compare_url(lab, *ids))
    assert response.status_code == status
    assert message in response.content.decode()
    assert 'id="compare-error"' in response.content.decode()


def test_another_learners_run_is_a_404_that_says_nothing_of_them(
    client, learner, outsider, lab, two_runs
):
    first, _ = two_runs
    theirs = finished_run(outsider, lab, code="secret = 42\n", hp=HP, losses=[0.5])
    client.force_login(learner)
    response = client.get(compare_url(lab, first.pk, theirs.pk))
    page = response.content.decode()
    assert response.status_code == 404
    assert f"Run #{theirs.pk} is not one of your runs." in page
    assert "secret" not in page
    # Nor may they compare the learner's runs.
    client.force_login(outsider)
    assert client.get(compare_url(lab, *(r.pk for r in two_runs))).status_code == 404


def test_a_run_of_another_lab_is_refused_by_name(client, learner, lab, two_runs):
    module = ModuleFactory.create(
        course=lab.module.course,
        stage=lab.module.stage,
        slug="other-lab",
        title="Other lab",
        kind="lab",
        position=10,
    )
    other = Lab.objects.create(
        module=module,
        dataset=lab.dataset,
        base_model=lab.base_model,
        baseline=0.3,
        target=0.9,
        pass_mark=60,
    )
    elsewhere = finished_run(learner, other, code="x = 2\n", hp=HP, losses=[0.7])
    client.force_login(learner)
    response = client.get(compare_url(lab, two_runs[0].pk, elsewhere.pk))
    assert response.status_code == 400
    assert f"Run #{elsewhere.pk} is a run of another lab (Other lab)" in response.content.decode()


def test_the_history_offers_checkboxes_and_a_compare_button(client, learner, lab, two_runs):
    client.force_login(learner)
    page = client.get(
        reverse("courses:module", args=[lab.module.course.slug, lab.module.slug])
    ).content.decode()
    assert f'name="runs" value="{two_runs[0].pk}"' in page
    assert 'id="compare-runs"' in page
    assert compare_url(lab) in page

from __future__ import annotations

import pytest
from django.urls import reverse

from grading.services import module_mark_complete
from labs.models import Submission
from tests.conftest import TINY_SOLUTION

HTMX = {"HTTP_HX_REQUEST": "true"}


def lab_url(lab):
    return reverse("courses:module", args=[lab.module.course.slug, lab.module.slug])


def submit_url(lab):
    return reverse("labs:submit", args=[lab.module.course.slug, lab.module.slug])


def test_lab_page_has_instructions_dataset_editor_and_attempts(client, learner, lab):
    client.force_login(learner)
    page = client.get(lab_url(lab)).content.decode()
    assert 'id="code-editor"' in page
    assert "codemirror.js" in page
    assert reverse("labs:dataset", args=[lab.dataset.slug]) in page
    assert "Attempts left today: <strong>5</strong>" in page
    assert "<code>preprocess</code>" in page
    assert "HYPERPARAMETERS = {}" in page  # the starter code fills the editor


def test_submit_via_htmx_returns_a_polling_run_panel(
    client, learner, lab, django_capture_on_commit_callbacks
):
    client.force_login(learner)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(submit_url(lab), {"code": TINY_SOLUTION}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="run-panel"')
    submission = Submission.objects.get()
    assert f'hx-get="{reverse("labs:run-status", args=[submission.pk])}"' in body
    assert 'hx-trigger="every 2s"' in body
    assert "position 1</strong> in the queue" in body


def test_syntax_error_is_shown_in_the_panel_and_nothing_is_queued(client, learner, lab):
    client.force_login(learner)
    response = client.post(submit_url(lab), {"code": "def broken(:\n"}, **HTMX)
    assert response.status_code == 422
    assert "Syntax error on line 1" in response.content.decode()
    assert not Submission.objects.exists()


def test_locked_lab_refuses_submissions(client, learner, course, lab):
    lab.module.stage = course.stages.get(slug="advanced")
    lab.module.save()
    client.force_login(learner)
    response = client.post(submit_url(lab), {"code": TINY_SOLUTION}, **HTMX)
    assert response.status_code == 422
    assert "locked" in response.content.decode()
    assert not Submission.objects.exists()


def test_status_partial_keeps_polling_while_active_and_stops_when_final(client, learner, lab):
    client.force_login(learner)
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="x",
        status="running",
        step=5,
        total_steps=20,
        loss_curve=[[1, 1.1], [5, 0.9]],
    )
    url = reverse("labs:run-status", args=[submission.pk])
    active = client.get(url, **HTMX)
    assert active.status_code == 200
    assert 'hx-trigger="every 2s"' in active.content.decode()
    assert 'aria-valuenow="25"' in active.content.decode()
    assert "<polyline" in active.content.decode()
    Submission.objects.filter(pk=submission.pk).update(
        status="error", error_message="boom in preprocess"
    )
    final = client.get(url, **HTMX)
    assert final.status_code == 286  # htmx: stop polling
    assert "boom in preprocess" in final.content.decode()
    assert 'hx-swap-oob="true"' in final.content.decode()


def test_other_learners_cannot_see_or_cancel_a_submission(client, learner, outsider, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code="SECRET = 1")
    client.force_login(outsider)
    assert client.get(reverse("labs:submission", args=[submission.pk])).status_code == 404
    assert client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX).status_code == 404
    assert client.post(reverse("labs:cancel", args=[submission.pk]), **HTMX).status_code == 404
    submission.refresh_from_db()
    assert submission.status == "queued"


def test_submission_page_shows_highlighted_code(client, learner, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code=TINY_SOLUTION)
    client.force_login(learner)
    page = client.get(reverse("labs:submission", args=[submission.pk])).content.decode()
    assert '<div class="codehilite">' in page
    assert "HYPERPARAMETERS" in page


def test_a_lab_cannot_be_completed_by_the_mark_complete_button(client, learner, lab):
    from grading.services import NotSelfCompletable

    client.force_login(learner)
    response = client.post(
        reverse("courses:module-complete", args=[lab.module.course.slug, lab.module.slug]), **HTMX
    )
    assert response.status_code == 403
    with pytest.raises(NotSelfCompletable):
        module_mark_complete(learner=learner, module=lab.module)


# Returning learner: session, user, permissions (2), course, module with its lab, the
# course progress (stages, modules, progress rows), then the lab's own: history, active
# run, today's attempts, dataset and the like. Pinned, so that reading the progress a
# second time (as the page once did) or a query per past run shows up here.
# 19 while the course progress was read twice; +1 the best run (editor), +1 the latest
# precheck, +1 the last run's code once there is a history (the editor's "Load my last").
LAB_PAGE_QUERIES = 18


def test_lab_page_query_count_does_not_grow_with_the_history(client, learner, lab):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(learner)
    client.get(lab_url(lab))  # the first visit records the start
    counts = []
    for runs in (1, 4):
        for _ in range(runs):
            Submission.objects.create(
                learner=learner, lab=lab, code=TINY_SOLUTION, status=Submission.Status.ERROR
            )
        with CaptureQueriesContext(connection) as queries:
            assert client.get(lab_url(lab)).status_code == 200
        counts.append(len(queries))
    assert counts == [LAB_PAGE_QUERIES, LAB_PAGE_QUERIES], counts


def test_a_graded_pass_refreshes_progress_best_score_and_stage_unlocks_out_of_band(
    client, learner, course, lab
):
    from django.db import transaction

    from grading.services import grade_apply
    from tests.grading.test_services_grading import make_grade
    from tests.web.test_lab_feedback_panels import METRICS

    for slug in ("intro", "loss"):  # the lab is the last required module of stage 1
        module_mark_complete(learner=learner, module=course.modules.get(slug=slug))
    client.force_login(learner)
    submission = Submission.objects.create(
        learner=learner, lab=lab, code="x", status="graded", step=10, total_steps=10
    )
    with transaction.atomic():
        grade_apply(grade=make_grade(submission, lab, METRICS))  # 73/100, pass mark 60

    final = client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX)

    assert final.status_code == 286
    body = final.content.decode()
    assert body.lstrip().startswith('<section id="run-status"')
    assert '<section id="lab-bar" class="lab-bar card" hx-swap-oob="true">' in body
    assert f"<strong>Your best:</strong> {submission.grade.score:.1f}/100" in body
    oob_panel = '<section id="progress-panel" class="card progress-panel" aria-live="polite"'
    assert oob_panel + ' hx-swap-oob="true">' in body
    panel = body[body.index('id="progress-panel"') :]
    assert "✓ Completed" in panel
    assert "Module complete." in panel
    assert "3 of 5 required modules complete" in panel  # the course percentage moved
    # Stage 2 was locked until this pass: the refreshed stage map shows it open.
    assert '<li class="stage open" data-stage="advanced">' in panel


@pytest.mark.parametrize(
    ("fields", "phase", "words"),
    [
        ({}, "starting", "Starting the sandbox (your code has not run yet)"),
        ({"counts_as_attempt": True}, "importing", "Your code is being imported"),
        (
            {"counts_as_attempt": True, "run_info": {"code_imported": True}},
            "hooks",
            "Your hooks are running",
        ),
        ({"counts_as_attempt": True, "step": 3, "total_steps": 12}, "training", "Training"),
        ({"counts_as_attempt": True, "phase": "grading", "total_steps": 12}, "grading", "Grading"),
    ],
)
def test_the_run_panel_says_which_phase_the_run_is_in_with_elapsed_time_against_the_limit(
    client, learner, lab, fields, phase, words
):
    import datetime

    from django.utils import timezone

    started = timezone.now() - datetime.timedelta(seconds=7)
    submission = Submission.objects.create(
        learner=learner, lab=lab, code="x", status="running", started_at=started, **fields
    )
    client.force_login(learner)
    body = client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX).content.decode()
    assert f'<strong class="run-phase" data-phase="{phase}">{words}' in body
    if phase != "grading":
        assert f"7 s of the {lab.wall_time_seconds} s limit" in body
    assert "still running at import time" not in body


def test_code_still_importing_after_twenty_seconds_is_named_as_what_is_running(
    client, learner, lab
):
    import datetime

    from django.utils import timezone

    started = timezone.now() - datetime.timedelta(seconds=45)
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="while True:\n    pass\n",
        status="running",
        started_at=started,
        counts_as_attempt=True,
    )
    client.force_login(learner)
    body = client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX).content.decode()
    assert "Your code is still running at import time." in body
    assert f"45 s of the {lab.wall_time_seconds} s limit" in body


def test_an_empty_submission_is_refused_beside_the_button_not_in_the_run_panel(
    client, learner, lab
):
    Submission.objects.create(
        learner=learner,
        lab=lab,
        code=TINY_SOLUTION,
        status=Submission.Status.ERROR,
        error_message="The run hit the 120 s wall-clock limit.",
    )
    client.force_login(learner)
    response = client.post(submit_url(lab), {"code": "   \n"}, **HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    panel_end = body.index("</section>\n", body.rindex('id="run-status"'))
    refusal = body.index('id="submit-error"')
    # The run panel (with the old run's time-out) first; the refusal on its own, swapped
    # out of band into the editor's form beside the submit button.
    assert "120 s wall-clock limit" in body[:panel_end]
    assert refusal > panel_end and 'hx-swap-oob="true"' in body[refusal - 80 :]
    assert "Your code is empty." in body[refusal:] and "Your code is empty." not in body[:panel_end]
    assert 'role="alert"' not in body[:panel_end]
    page = client.get(lab_url(lab)).content.decode()
    form = page[
        page.index('id="submit-run"') : page.index("</form>", page.index('id="submit-run"'))
    ]
    assert 'id="submit-error"' in form and "hidden" in form


def test_the_attempts_reset_time_names_the_servers_time_zone(client, learner, lab, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    client.force_login(learner)
    page = client.get(lab_url(lab)).content.decode()
    assert "(they reset at 00:00 CET)" in page or "(they reset at 00:00 CEST)" in page
    settings.TIME_ZONE = "UTC"
    assert "(they reset at 00:00 UTC)" in client.get(lab_url(lab)).content.decode()


def test_a_best_score_just_under_the_pass_mark_is_not_shown_rounded_up_to_it(client, learner, lab):
    """59.6 against a pass mark of 60 read "60/100" beside "you need 60": every page shows a
    score to one decimal, as the CSV and JSON carry it (academy/numbers.py)."""
    from django.db import transaction

    from grading.models import Grade
    from grading.services import grade_apply
    from tests.grading.test_services_grading import make_grade
    from tests.web.test_lab_feedback_panels import METRICS

    assert lab.pass_mark == 60
    submission = Submission.objects.create(
        learner=learner, lab=lab, code="x", status="graded", step=10, total_steps=10
    )
    grade = make_grade(submission, lab, METRICS)
    Grade.objects.filter(pk=grade.pk).update(score=59.6, passed=False)
    grade.refresh_from_db()
    with transaction.atomic():
        grade_apply(grade=grade)
    client.force_login(learner)

    page = client.get(lab_url(lab)).content.decode()
    panel = client.get(reverse("labs:run-status", args=[submission.pk]), **HTMX).content.decode()

    assert "<strong>Your best:</strong> 59.6/100" in page
    assert '<span class="score-value">59.6</span>' in panel
    assert "Not passed yet" in panel
    assert "60/100" not in page + panel

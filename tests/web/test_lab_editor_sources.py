"""A returning learner's editor starts from their best run, with best / last / starter offered."""

from __future__ import annotations

import html

from django.urls import reverse

from grading.models import Grade
from labs.models import Submission
from tests.grading.test_services_grading import make_grade
from tests.web.test_lab_feedback_panels import METRICS

BEST = "HYPERPARAMETERS = {'learning_rate': 5e-5}  # best\n"
MIDDLING = "HYPERPARAMETERS = {'learning_rate': 1.0}  # middling\n"
LAST = "while True:\n    pass\n"


def lab_url(lab, query: str = "") -> str:
    return reverse("courses:module", args=[lab.module.course.slug, lab.module.slug]) + query


def editor_text(page: str) -> str:
    start = page.index('id="code-editor"')
    body = page[page.index(">", start) + 1 : page.index("</textarea>", start)]
    return html.unescape(body)


def runs(learner, lab) -> dict[str, Submission]:
    made = {}
    for name, code, score, status in (
        ("best", BEST, 80.0, "graded"),
        ("middling", MIDDLING, 40.0, "graded"),
        ("last", LAST, None, "error"),
    ):
        made[name] = Submission.objects.create(learner=learner, lab=lab, code=code, status=status)
        if score is not None:
            grade = make_grade(made[name], lab, METRICS)
            Grade.objects.filter(pk=grade.pk).update(score=score)
    return made


def test_a_returning_learner_gets_their_best_code_not_their_last(client, learner, lab):
    made = runs(learner, lab)
    client.force_login(learner)
    page = client.get(lab_url(lab)).content.decode()
    assert editor_text(page) == BEST
    assert f"Your best run (#{made['best'].pk}, 80.0/100) is loaded." in page
    for label in ("Load my best", "Load my last", "Reset to starter"):
        assert f">{label}</a>" in page


def test_load_my_last_and_reset_to_starter(client, learner, lab):
    runs(learner, lab)
    client.force_login(learner)
    assert editor_text(client.get(lab_url(lab, "?load=last")).content.decode()) == LAST
    assert editor_text(client.get(lab_url(lab, "?load=starter")).content.decode()) == (
        lab.starter_code
    )


def test_without_a_graded_run_the_last_run_is_loaded(client, learner, lab):
    Submission.objects.create(learner=learner, lab=lab, code=LAST, status="error")
    client.force_login(learner)
    page = client.get(lab_url(lab)).content.decode()
    assert editor_text(page) == LAST
    assert ">Load my best</a>" not in page and ">Load my last</a>" in page


def test_a_first_visit_offers_the_starter_only(client, learner, lab):
    client.force_login(learner)
    page = client.get(lab_url(lab, "?load=best")).content.decode()
    assert editor_text(page) == lab.starter_code
    assert "The starter code is loaded." in page
    assert ">Load my best</a>" not in page and ">Load my last</a>" not in page


def test_another_learners_runs_are_never_loaded(client, learner, outsider, lab):
    runs(outsider, lab)
    client.force_login(learner)
    page = client.get(lab_url(lab, "?load=last")).content.decode()
    assert BEST not in html.unescape(page) and "while True" not in page

"""web.services: a module's first visit, and a lab submission's checks before the queue."""

from __future__ import annotations

import pytest
from django.urls import reverse

from academy.refusals import Refusal
from courses.models import Module
from grading.models import ModuleProgress
from labs.models import Submission
from labs.services.submissions import SubmissionRefused
from tests.conftest import TINY_SOLUTION
from web.services import SUBMIT_BURST, lab_submit, module_open

pytestmark = pytest.mark.django_db


def test_opening_an_open_module_records_the_start_once_and_shows_it(learner, course):
    intro = Module.objects.get(course=course, slug="intro")
    progress = module_open(learner=learner, module=intro)
    assert progress.state_of(intro).status == "in_progress"
    module_open(learner=learner, module=intro)
    assert ModuleProgress.objects.filter(learner=learner, module=intro).count() == 1


def test_opening_a_locked_module_records_nothing(learner, course):
    deeper = Module.objects.get(course=course, slug="deeper")
    progress = module_open(learner=learner, module=deeper)
    assert not progress.state_of(deeper).is_open
    assert not ModuleProgress.objects.filter(learner=learner).exists()


def test_a_locked_lab_is_refused_with_422_before_anything_is_queued(learner, course, lab):
    lab.module.stage = course.stages.get(slug="advanced")
    lab.module.save()
    with pytest.raises(Refusal, match="This lab is locked") as info:
        lab_submit(learner=learner, module=lab.module, lab=lab, code=TINY_SOLUTION)
    assert info.value.status == 422
    assert not Submission.objects.exists()


def test_the_submission_services_refusal_passes_through_with_its_own_status(learner, lab):
    with pytest.raises(SubmissionRefused, match="Syntax error on line 1") as info:
        lab_submit(learner=learner, module=lab.module, lab=lab, code="def (:\n")
    assert isinstance(info.value, Refusal) and info.value.status == 422


def test_a_burst_is_refused_with_429_even_for_code_that_would_pass(learner, lab):
    for _ in range(SUBMIT_BURST.limit):
        with pytest.raises(SubmissionRefused):
            lab_submit(learner=learner, module=lab.module, lab=lab, code="def (:\n")
    with pytest.raises(Refusal, match="You are submitting too fast: wait") as info:
        lab_submit(learner=learner, module=lab.module, lab=lab, code=TINY_SOLUTION)
    assert info.value.status == 429
    assert not Submission.objects.exists()


def test_a_lab_page_asks_an_anonymous_visitor_to_sign_in(client, lab):
    url = reverse("courses:module", args=[lab.module.course.slug, lab.module.slug])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_lab_module_whose_lab_is_not_written_yet_shows_as_a_module_page(client, learner, course):
    client.force_login(learner)
    for slug in ("intro", "loss"):  # the first stage, so that the lab module's is open
        client.post(reverse("courses:module-complete", args=[course.slug, slug]))
    response = client.get(reverse("courses:module", args=[course.slug, "lab"]))
    assert response.status_code == 200
    assert 'id="code-editor"' not in response.content.decode()

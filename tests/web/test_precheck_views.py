"""The precheck's web side: who may see one, what is refused, and when a page gives up."""

from __future__ import annotations

import datetime

from django.urls import reverse
from django.utils import timezone

from labs.models import Precheck
from web.services import PRECHECK_BURST


def precheck_url(lab) -> str:
    return reverse("labs:precheck", args=[lab.module.course.slug, lab.module.slug])


def test_the_lab_page_has_the_precheck_button_beside_train_and_grade(client, learner, lab):
    client.force_login(learner)
    page = client.get(reverse("courses:module", args=[lab.module.course.slug, lab.module.slug]))
    assert b'id="precheck-run"' in page.content and b'id="precheck-panel"' in page.content


def test_an_outsider_cannot_see_another_learners_precheck(client, learner, outsider, lab):
    found = Precheck.objects.create(learner=learner, lab=lab, code="x = 1\n")
    client.force_login(outsider)
    response = client.get(reverse("labs:precheck-status", args=[found.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 404


def test_empty_code_is_refused_with_a_message_and_nothing_is_queued(client, learner, lab):
    client.force_login(learner)
    response = client.post(precheck_url(lab), {"code": "   "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert b"Your code is empty" in response.content
    assert not Precheck.objects.exists()


def test_code_over_the_size_limit_is_refused(client, learner, lab):
    client.force_login(learner)
    response = client.post(precheck_url(lab), {"code": "x = 1\n" * 12_000}, HTTP_HX_REQUEST="true")
    assert response.status_code in (413, 422)
    assert b"larger than" in response.content
    assert not Precheck.objects.exists()


def test_prechecks_have_their_own_rate_limit(
    client, learner, lab, django_capture_on_commit_callbacks
):
    client.force_login(learner)
    for _ in range(PRECHECK_BURST.limit):
        with django_capture_on_commit_callbacks(execute=False):
            assert (
                client.post(
                    precheck_url(lab), {"code": "x = 1\n"}, HTTP_HX_REQUEST="true"
                ).status_code
                == 200
            )
    refused = client.post(precheck_url(lab), {"code": "x = 1\n"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 429 and b"too fast" in refused.content
    assert Precheck.objects.count() == PRECHECK_BURST.limit
    # Submitting a run is limited apart: prechecks do not use up its burst.
    submit = reverse("labs:submit", args=[lab.module.course.slug, lab.module.slug])
    with django_capture_on_commit_callbacks(execute=False):
        assert (
            client.post(
                submit, {"code": "def preprocess(text):\n    return text\n"}, HTTP_HX_REQUEST="true"
            ).status_code
            == 200
        )


def test_a_precheck_no_worker_answered_is_given_up_and_polling_stops(client, learner, lab):
    found = Precheck.objects.create(learner=learner, lab=lab, code="x = 1\n")
    Precheck.objects.filter(pk=found.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    client.force_login(learner)
    response = client.get(reverse("labs:precheck-status", args=[found.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert b"No worker answered" in response.content
    found.refresh_from_db()
    assert found.status == "failed"


def test_a_still_running_precheck_keeps_polling(client, learner, lab):
    found = Precheck.objects.create(learner=learner, lab=lab, code="x = 1\n")
    client.force_login(learner)
    response = client.get(reverse("labs:precheck-status", args=[found.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b'hx-trigger="every 1s"' in response.content


def test_a_report_of_the_wrong_shape_shows_its_checks_and_no_broken_chart(client, learner, lab):
    # The learner's code shares the precheck's process and can write the report itself.
    report = {
        "checks": [{"name": "<script>", "status": "ok", "message": "<b>hi</b>"}],
        "lengths": {"bins": "x"},
        "schedule": {"points": [["a", 1]]},
    }
    found = Precheck.objects.create(
        learner=learner, lab=lab, code="x = 1\n", status="done", report=report
    )
    client.force_login(learner)
    response = client.get(reverse("labs:precheck-status", args=[found.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert b"<b>hi</b>" not in response.content and b"&lt;b&gt;hi&lt;/b&gt;" in response.content
    assert b"Token lengths" not in response.content and b"Learning rate" not in response.content

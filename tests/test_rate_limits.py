"""Rate limits on sign-in and on lab submissions: clear refusals, nothing else harmed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labs.models import Submission
from tests.web.test_lab_views import HTMX, submit_url

pytestmark = pytest.mark.django_db


def sign_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_ten_failed_sign_ins_lock_the_account_for_a_while_with_a_clear_message(client, learner):
    learner.set_password("right-password")
    learner.save()
    for _ in range(10):
        assert sign_in(client, learner.username, "wrong").status_code == 200

    refused = sign_in(client, learner.username, "right-password")

    assert refused.status_code == 429
    assert "Too many failed sign-ins. Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_account_lock_is_keyed_on_the_account_whatever_its_spelling(client, learner):
    for _ in range(10):
        sign_in(client, learner.username.upper(), "wrong")
    assert sign_in(client, f" {learner.username} ", "wrong").status_code == 429


def test_another_account_can_still_sign_in_from_the_same_address(client, learner, outsider):
    outsider.set_password("outsider-password")
    outsider.save()
    for _ in range(10):
        sign_in(client, learner.username, "wrong")

    response = sign_in(client, outsider.username, "outsider-password")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(outsider.pk)


def test_successful_sign_ins_do_not_count(client, learner):
    learner.set_password("right-password")
    learner.save()
    for _ in range(12):
        assert sign_in(client, learner.username, "right-password").status_code == 302
        client.logout()


def test_a_burst_of_submissions_is_refused_after_six_a_minute(
    client, learner, lab, django_capture_on_commit_callbacks
):
    client.force_login(learner)
    # Broken code is refused by the service but still counts towards the burst.
    for _ in range(6):
        assert client.post(submit_url(lab), {"code": "def (:\n"}, **HTMX).status_code == 422

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            submit_url(lab), {"code": "def preprocess(text):\n    return text\n"}, **HTMX
        )

    assert response.status_code == 429
    assert "You are submitting too fast: wait" in response.content.decode()
    assert not Submission.objects.exists()


def test_a_refused_burst_without_htmx_redirects_with_the_message(client, learner, lab):
    client.force_login(learner)
    for _ in range(6):
        client.post(submit_url(lab), {"code": "def (:\n"})

    response = client.post(submit_url(lab), {"code": "def (:\n"}, follow=True)

    assert "You are submitting too fast" in response.content.decode()


def test_one_learners_burst_does_not_limit_another(
    client, learner, outsider, lab, django_capture_on_commit_callbacks
):
    client.force_login(learner)
    for _ in range(7):
        client.post(submit_url(lab), {"code": "def (:\n"}, **HTMX)
    client.force_login(outsider)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            submit_url(lab), {"code": "def preprocess(text):\n    return text\n"}, **HTMX
        )
    assert response.status_code == 200
    assert Submission.objects.filter(learner=outsider).count() == 1

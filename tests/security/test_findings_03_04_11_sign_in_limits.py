"""Findings 3, 4 and 11: sign-in limits keyed on the identity the form signs in with, on every
password form (the admin's too), per real client behind a proxy, and on password reset."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db

FULL_WIDTH_LEE = "\uff4c\uff45\uff45"  # full-width; NFKC makes it "lee"


def sign_in(client, username: str, password: str, url: str = "/accounts/login/", **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def test_finding_03_look_alike_spellings_share_the_accounts_lock(client, learner):
    learner.set_password("right-password")
    learner.save()
    for _ in range(10):
        sign_in(client, "lee", "wrong")
    # Each spelling used to get ten guesses of its own; all of them sign in as "lee".
    for spelling in (FULL_WIDTH_LEE, "LEE", "\uff2c\uff25\uff25", " Lee "):
        refused = sign_in(client, spelling, "right-password")
        assert refused.status_code == 429, spelling
        assert "Too many failed sign-ins. Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_finding_03_failures_under_a_look_alike_count_towards_the_account(client, learner):
    for _ in range(10):
        sign_in(client, FULL_WIDTH_LEE, "wrong")
    assert sign_in(client, "lee", "wrong").status_code == 429


def test_finding_04_the_admin_sign_in_is_rate_limited(client, instructor):
    instructor.set_password("right-password")
    instructor.save()
    for _ in range(10):
        assert sign_in(client, "irene", "wrong", url="/admin/login/").status_code == 200

    refused = sign_in(client, "irene", "right-password", url="/admin/login/")

    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_finding_04_admin_and_learner_sign_in_share_one_count(client, instructor):
    for _ in range(5):
        sign_in(client, "irene", "wrong", url="/admin/login/")
    for _ in range(5):
        sign_in(client, "irene", "wrong")
    assert sign_in(client, "irene", "wrong", url="/admin/login/").status_code == 429
    assert sign_in(client, "irene", "wrong").status_code == 429


def test_finding_04_the_admin_sign_in_still_works_within_the_limit(client, instructor):
    instructor.set_password("right-password")
    instructor.save()
    response = sign_in(client, "irene", "right-password", url="/admin/login/")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(instructor.pk)


def test_finding_11_behind_a_proxy_one_guesser_does_not_lock_out_everyone(
    client, settings, outsider
):
    settings.ACADEMY_CLIENT_ADDRESS_HEADER = "X-Forwarded-For"
    outsider.set_password("outsider-password")
    outsider.save()
    for number in range(100):
        # The guesser writes a forged entry of its own; the proxy appends the real one.
        sign_in(
            client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=f"10.9.9.{number}, 203.0.113.7"
        )
    assert sign_in(client, "x", "y", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429

    colleague = sign_in(client, "olga", "outsider-password", HTTP_X_FORWARDED_FOR="198.51.100.4")

    assert colleague.status_code == 302


def test_finding_11_without_a_configured_header_a_forwarded_address_is_not_trusted(client):
    for number in range(100):
        sign_in(client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{number}")
    assert sign_in(client, "x", "y", HTTP_X_FORWARDED_FOR="10.1.1.1").status_code == 429


def test_finding_11_password_reset_is_rate_limited_per_mailbox(client, learner):
    learner.email = "lee@example.com"
    learner.save()
    url = reverse("password_reset")
    for _ in range(3):
        assert client.post(url, {"email": "lee@example.com"}).status_code == 302

    refused = client.post(url, {"email": "LEE@example.com"})

    assert refused.status_code == 429
    assert "Too many password reset requests. Try again in" in refused.content.decode()
    assert len(mail.outbox) == 3


def test_finding_11_password_reset_is_rate_limited_per_client_address(client):
    url = reverse("password_reset")
    for number in range(10):
        client.post(url, {"email": f"nobody{number}@example.com"})
    assert client.post(url, {"email": "someone@example.com"}).status_code == 429

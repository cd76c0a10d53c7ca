"""Refusals and errors look like the site: its header, stylesheet and a way back."""

from __future__ import annotations

from django.test import Client, RequestFactory
from django.views.defaults import bad_request, server_error


def test_a_learner_opening_the_reports_gets_the_sites_403_page(client, learner):
    client.force_login(learner)
    response = client.get("/reports/")
    body = response.content.decode()
    assert response.status_code == 403
    assert 'class="site-header"' in body and "css/academy.css" in body
    assert "You cannot open this page" in body
    assert "Reports are for HR" in body  # the refusal's own reason


def test_an_unknown_address_gets_the_sites_404_page(client, learner):
    client.force_login(learner)
    response = client.get("/courses/no-such-course/")
    body = response.content.decode()
    assert response.status_code == 404
    assert 'class="site-header"' in body and "Page not found" in body


def test_the_500_page_renders_without_a_request_context_in_the_sites_look():
    response = server_error(RequestFactory().get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "css/academy.css" in body and "Something went wrong on our side" in body


def test_favicon_ico_is_answered_with_the_shipped_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("img/favicon.svg")
    page = client.get("/accounts/login/").content.decode()
    assert 'rel="icon"' in page and "img/favicon.svg" in page


def test_a_form_sent_without_its_csrf_token_gets_the_sites_403_page(learner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    response = client.post("/accounts/logout/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "css/academy.css" in body and "This form has expired" in body


def test_the_400_page_renders_without_a_request_context_in_the_sites_look():
    response = bad_request(RequestFactory().get("/"), exception=None)
    body = response.content.decode()
    assert response.status_code == 400
    assert "css/academy.css" in body and "This request could not be read" in body

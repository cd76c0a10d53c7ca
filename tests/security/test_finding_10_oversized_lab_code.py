"""Finding 10: lab code that overflows the parser, or a POST over Django's size limit, must be
answered in the run panel with a message for the learner (not a 500, not Django's bare 400)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from academy.middleware import oversized_post
from labs.models import Submission
from tests.web.test_lab_views import HTMX, submit_url

pytestmark = pytest.mark.django_db


def test_finding_10_code_that_overflows_the_parser_is_refused_in_the_run_panel(
    client, learner, lab
):
    client.force_login(learner)
    code = "x = " + "a+" * 29_000 + "a\n"  # ~58 KB, under the size cap

    response = client.post(submit_url(lab), {"code": code}, **HTMX)

    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="run-panel"' in body
    assert "nested too deeply for Python to parse" in body
    assert not Submission.objects.exists()


def test_finding_10_a_post_over_the_upload_limit_gets_the_run_panel_and_a_message(learner, lab):
    # With CSRF checks on, as in production: the token travels in htmx's header.
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    page = client.get(f"/courses/{lab.module.course.slug}/{lab.module.slug}/")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else None
    if token is None:
        token = get_token(page.wsgi_request)
        client.cookies["csrftoken"] = token

    # Form-encoded, as htmx posts the editor's form.
    response = client.post(
        submit_url(lab),
        urlencode({"code": "x = 1\n" * 500_000}),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_CSRFTOKEN=token,
        **HTMX,
    )

    assert response.status_code == 413
    body = response.content.decode()
    assert 'id="run-panel"' in body  # the form keeps its hx-target
    assert "Your code is larger than 64 KB" in body
    assert not Submission.objects.exists()


def test_finding_10_a_file_upload_over_the_form_limit_still_reaches_the_view(settings):
    """Uploaded files do not count against DATA_UPLOAD_MAX_MEMORY_SIZE: a dataset CSV or a
    course zip of a few MB must reach the admin's upload view whole."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    seen: dict[str, int] = {}

    def view(request: HttpRequest) -> HttpResponse:
        upload = request.FILES.get("train")
        seen["bytes"] = upload.size if upload else 0
        return HttpResponse()

    big = SimpleUploadedFile("train.csv", b"text,label\n" + b"hello,a\n" * 400_000)
    assert big.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    request = RequestFactory().post("/admin/upload/", {"train": big})

    oversized_post(view)(request)

    assert seen["bytes"] == big.size

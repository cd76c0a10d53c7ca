"""A lab's "Take it home" downloads: offered once the lab is passed, and only its own files."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from courses.services import enrollment_create
from grading.models import ModuleProgress
from labs.training.data import read_csv
from tests.conftest import SHIPPED_COURSE

LAB = "lab-first-fine-tune"


def takehome_url(name: str, slug: str = LAB) -> str:
    return reverse("labs:takehome", args=["fine-tuning-at-work", slug, name])


@pytest.fixture
def enrolled(shipped_course, learner):
    enrollment_create(learner=learner, course=shipped_course)
    return shipped_course


def _pass(course, learner, slug: str = LAB) -> None:
    ModuleProgress.objects.update_or_create(
        learner=learner,
        module=course.modules.get(slug=slug),
        defaults={"status": ModuleProgress.Status.COMPLETED, "best_score": 80},
    )


def _lab_page(client, slug: str = LAB) -> str:
    return client.get(
        reverse("courses:module", args=["fine-tuning-at-work", slug])
    ).content.decode()


def test_lab_page_says_the_take_home_opens_once_the_lab_is_passed(client, learner, enrolled):
    client.force_login(learner)
    page = _lab_page(client)
    assert 'id="takehome"' in page and 'id="takehome-locked"' in page
    assert takehome_url("train.py") not in page
    assert client.get(takehome_url("train.py")).status_code == 404


def test_passed_lab_links_script_notebook_readme_and_training_csv(client, learner, enrolled):
    _pass(enrolled, learner)
    client.force_login(learner)
    page = _lab_page(client)
    for name in ("README.md", "train.py", "train.ipynb", "train.csv"):
        assert takehome_url(name) in page
    response = client.get(takehome_url("train.py"))
    assert response.status_code == 200
    assert 'attachment; filename="train.py"' in response["Content-Disposition"]
    shipped = SHIPPED_COURSE / "takehome" / LAB / "train.py"
    assert b"".join(response.streaming_content) == shipped.read_bytes()


def test_training_csv_is_exactly_the_train_split(client, learner, enrolled):
    _pass(enrolled, learner)
    client.force_login(learner)
    response = client.get(takehome_url("train.csv"))
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    dataset = SHIPPED_COURSE / "datasets" / "twitter-financial-sentiment"
    assert [(r["text"], r["label"]) for r in rows] == read_csv(dataset / "train.csv")


@pytest.mark.parametrize(
    "name", ["solution.py", "starter.py", "test.csv", "build.py", "..%2Fbuild.py", "metrics.json"]
)
def test_only_the_take_home_files_are_served(client, learner, enrolled, name):
    _pass(enrolled, learner)
    client.force_login(learner)
    assert client.get(takehome_url(name)).status_code == 404


def test_a_lesson_has_no_take_home(client, learner, enrolled):
    client.force_login(learner)
    assert client.get(takehome_url("train.py", "tokenisation")).status_code == 404


def test_signed_out_visitor_is_sent_to_sign_in(client, enrolled):
    response = client.get(takehome_url("train.py"))
    assert response.status_code == 302 and "login" in response["Location"]

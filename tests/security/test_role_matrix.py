"""Every URL of the site against every role: anonymous, the learner who owns the objects,
another learner, an instructor, HR and a superuser. A URL missing from the matrix fails
the test, so a new page must say who may see it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from grading.models import CourseStaff
from labs.models import Precheck, Prediction, Submission
from tests.conftest import TINY_SOLUTION

ROLES = ["anonymous", "owner", "other_learner", "instructor", "hr", "superuser"]
LOGIN = 302  # sent to sign in

# name -> (method, expected status per role, in ROLES order)
MATRIX: dict[str, tuple[str, tuple[int, ...]]] = {
    "courses:catalog": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    "courses:my-learning": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    "courses:course": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    "courses:enroll": ("POST", (LOGIN, 302, 302, 302, 302, 302)),
    "courses:module": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    "courses:module-complete": ("POST", (LOGIN, 302, 302, 302, 302, 302)),
    "courses:module-check": ("POST", (LOGIN, 302, 302, 302, 302, 302)),
    # An author's preview of a draft: only who may change modules (404 for the rest).
    "courses:module-preview": ("GET", (LOGIN, 404, 404, 200, 404, 200)),
    "labs:submit": ("POST", (LOGIN, 302, 302, 302, 302, 302)),
    # A run's page is its learner's; an instructor of its course and a superuser read it
    # (read-only), HR and other learners get 404, as an id that does not exist would.
    "labs:submission": ("GET", (LOGIN, 200, 404, 200, 404, 200)),
    "labs:run-status": ("GET", (LOGIN, 302, 404, 404, 404, 404)),  # 302: non-htmx -> run page
    "labs:cancel": ("POST", (LOGIN, 302, 404, 404, 404, 404)),
    "labs:dataset": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    # Take-home files open once the lab is passed: nobody here has passed it.
    "labs:takehome": ("GET", (LOGIN, 404, 404, 404, 404, 404)),
    # Without runs picked everyone is told to pick two; whose runs may be compared is
    # tests/web/test_compare_views.py's subject.
    "labs:compare": ("GET", (LOGIN, 400, 400, 400, 400, 400)),
    # Prechecks and "try your model" answer htmx; a plain request goes back to the page
    # (302). A precheck or a prediction is its learner's alone: 404 for anyone else.
    "labs:precheck": ("POST", (LOGIN, 302, 302, 302, 302, 302)),
    "labs:precheck-status": ("GET", (LOGIN, 302, 404, 404, 404, 404)),
    "labs:try-model": ("POST", (LOGIN, 302, 404, 404, 404, 404)),
    "labs:prediction-status": ("GET", (LOGIN, 302, 404, 404, 404, 404)),
    "reports:report": ("GET", (LOGIN, 403, 403, 200, 200, 200)),
    "reports:export-csv": ("GET", (LOGIN, 403, 403, 403, 200, 200)),
    "reports:export-json": ("GET", (401, 403, 403, 403, 200, 200)),
    "reports:assign": ("GET", (LOGIN, 403, 403, 403, 200, 200)),
    "reports:employee-import": ("GET", (LOGIN, 403, 403, 403, 200, 200)),
    # An empty confirmation: HR is sent back to the upload form with a message.
    "reports:employee-import-confirm": ("POST", (LOGIN, 403, 403, 403, 302, 302)),
    "reports:transcript": ("GET", (LOGIN, 200, 403, 403, 200, 200)),
    # The language switcher is open to everyone; posted here without a language: 400.
    "set_language": ("POST", (400, 400, 400, 400, 400, 400)),
    "login": ("GET", (200, 200, 200, 200, 200, 200)),
    "logout": ("POST", (302, 302, 302, 302, 302, 302)),
    # Single sign-on's start and callback: not found while it is off, as here (docs/sso.md).
    "oidc_authentication_init": ("GET", (404, 404, 404, 404, 404, 404)),
    "oidc_authentication_callback": ("GET", (404, 404, 404, 404, 404, 404)),
    "password_change": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    "password_change_done": ("GET", (LOGIN, 200, 200, 200, 200, 200)),
    "password_reset": ("GET", (200, 200, 200, 200, 200, 200)),
    "password_reset_done": ("GET", (200, 200, 200, 200, 200, 200)),
    "password_reset_confirm": ("GET", (200, 200, 200, 200, 200, 200)),
    "password_reset_complete": ("GET", (200, 200, 200, 200, 200, 200)),
}


def site_urls() -> dict[str, URLPattern]:
    """Every named URL outside the admin (the admin has its own permission system)."""
    found: dict[str, URLPattern] = {}

    def walk(patterns, namespace: str = "") -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif pattern.name:
                found[f"{namespace}{pattern.name}"] = pattern

    walk(get_resolver().url_patterns)
    return found


def test_every_url_of_the_site_is_in_the_matrix():
    assert set(site_urls()) == set(MATRIX)


@pytest.fixture
def world(db, learner, outsider, instructor, hr, lab):
    """The objects the URLs point at, all belonging to `learner`."""
    from courses.models import Enrollment

    course = lab.module.course
    Enrollment.objects.get_or_create(learner=learner, course=course)
    submission = Submission.objects.create(
        learner=learner, lab=lab, code=TINY_SOLUTION, status=Submission.Status.FAILED
    )
    theory = course.modules.filter(kind="theory").order_by("stage__position", "position").first()
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    CourseStaff.objects.create(course=course, user=instructor)  # teaches it, as in the demo
    args = {
        "courses:course": [course.slug],
        "courses:enroll": [course.slug],
        "courses:module": [course.slug, theory.slug],
        "courses:module-complete": [course.slug, theory.slug],
        "courses:module-check": [course.slug, theory.slug],
        "courses:module-preview": [course.slug, theory.slug],
        "labs:submit": [course.slug, lab.module.slug],
        "labs:submission": [submission.pk],
        "labs:run-status": [submission.pk],
        "labs:cancel": [submission.pk],
        "labs:dataset": [lab.dataset.slug],
        "labs:takehome": [course.slug, lab.module.slug, "README.md"],
        "labs:compare": [course.slug, lab.module.slug],
        "labs:precheck": [course.slug, lab.module.slug],
        "labs:precheck-status": [
            Precheck.objects.create(learner=learner, lab=lab, code=submission.code).pk
        ],
        "labs:try-model": [submission.pk],
        "labs:prediction-status": [
            Prediction.objects.create(learner=learner, submission=submission, texts=["a"]).pk
        ],
        "reports:transcript": [learner.pk],
        "password_reset_confirm": ["MQ", "set-password"],
    }
    users = {
        "owner": learner,
        "other_learner": outsider,
        "instructor": instructor,
        "hr": hr,
        "superuser": superuser,
    }
    return args, users


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_role_gets_the_expected_status(world, name):
    from django.urls import reverse

    args, users = world
    method, expected = MATRIX[name]
    url = reverse(name, args=args.get(name, []))
    seen = {}
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            client.force_login(users[role])
        data = {"code": TINY_SOLUTION} if name == "labs:submit" else {}
        response = client.post(url, data) if method == "POST" else client.get(url)
        seen[role] = response.status_code
    assert seen == dict(zip(ROLES, expected, strict=True))


@pytest.mark.parametrize("name", sorted(n for n, (method, _) in MATRIX.items() if method == "POST"))
def test_every_post_without_a_csrf_token_is_refused(world, name):
    from django.urls import reverse

    args, users = world
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["owner"])
    response = client.post(reverse(name, args=args.get(name, [])), {"code": TINY_SOLUTION})
    assert response.status_code == 403
    assert not Submission.objects.exclude(status=Submission.Status.FAILED).exists()

"""Cached learner pages: served while nothing they show has changed, never after.

Each test drives the real views, services and admin with the test client; a page's
source is read from the `X-Academy-Page-Cache` header (absent: rendered, not stored).
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.urls import reverse

from courses.models import CheckAttempt, Enrollment, Module
from courses.services import course_set_published, module_set_body
from grading.services import module_mark_complete, module_start
from tests.courses.test_admin import NO_QUESTIONS
from tests.factories import UserFactory
from tests.web.test_knowledge_check_views import form_data
from web.pagecache import HEADER

# A cached page: the session, the user, and the one query for the page's versions.
CACHED_PAGE_QUERIES = 3


def lesson(course, slug: str = "loss") -> str:
    return reverse("courses:module", args=[course.slug, slug])


def browser(user, *, enforce_csrf: bool = False) -> Client:
    """A signed-in browser that holds a CSRF cookie, as one does after its first page."""
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    client.get(reverse("courses:catalog"))
    assert "csrftoken" in client.cookies
    return client


def served(client: Client, url: str) -> tuple[str | None, str]:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get(HEADER), response.content.decode()


def form_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def enroll(user, course) -> None:
    """Enrolled, with stage 1 opened: a first visit starts a module, and that write moves
    the version on (the page it rendered is stored under a key no later request uses)."""
    Enrollment.objects.create(learner=user, course=course)
    for module in course.modules.filter(stage__position=1):
        module_start(learner=user, module=module)


@pytest.fixture
def enrolled(learner, course):
    enroll(learner, course)
    return learner


def test_a_lesson_is_served_from_the_cache_with_three_queries(
    enrolled, course, django_assert_num_queries
):
    client = browser(enrolled)
    assert served(client, lesson(course))[0] == "miss"
    with django_assert_num_queries(CACHED_PAGE_QUERIES):
        source, page = served(client, lesson(course))
    assert source == "hit"
    assert "Loss" in page and 'id="mark-complete"' in page


def test_completing_a_module_shows_at_once_and_the_cached_forms_token_is_accepted(enrolled, course):
    client = browser(enrolled, enforce_csrf=True)
    served(client, lesson(course, "intro"))
    source, page = served(client, lesson(course, "intro"))
    assert source == "hit" and "✓ Completed" not in page
    complete = reverse("courses:module-complete", args=[course.slug, "intro"])
    response = client.post(complete, {"csrfmiddlewaretoken": form_token(page)})
    assert response.status_code == 302  # a token the cookie does not match would be a 403
    source, page = served(client, lesson(course, "intro"))
    assert source is None and "marked complete" in page  # rendered, for its message
    source, page = served(client, lesson(course, "intro"))
    assert source == "miss" and "✓ Completed" in page


def test_a_second_browser_of_the_same_learner_gets_a_page_whose_forms_work(enrolled, course):
    first, second = browser(enrolled), browser(enrolled, enforce_csrf=True)
    served(first, lesson(course, "intro"))
    assert served(first, lesson(course, "intro"))[0] == "hit"
    assert served(second, lesson(course, "intro"))[0] == "miss"  # not the first one's page
    page = served(second, lesson(course, "intro"))[1]
    complete = reverse("courses:module-complete", args=[course.slug, "intro"])
    assert second.post(complete, {"csrfmiddlewaretoken": form_token(page)}).status_code == 302


def test_another_learner_never_gets_a_cached_page(enrolled, course):
    other = UserFactory(username="omar", first_name="Omar", last_name="Other")
    enroll(other, course)
    served(browser(enrolled), lesson(course))
    client = browser(other)
    source, page = served(client, lesson(course))
    assert source == "miss" and "Omar Other" in page


def test_a_knowledge_check_attempt_shows_at_once(enrolled, course, checked):
    client = browser(enrolled)
    served(client, lesson(course))
    assert served(client, lesson(course))[0] == "hit"
    check = reverse("courses:module-check", args=[course.slug, "loss"])
    client.post(check, form_data(checked, right=False), HTTP_HX_REQUEST="true")
    source, page = served(client, lesson(course))
    assert source == "miss" and "Your last attempt" in page and "0 of 2 correct" in page


def test_a_page_inside_a_cool_down_is_never_cached_and_opens_by_the_clock(
    enrolled, course, checked
):
    checked.check_cooldown_minutes = 30
    checked.save(update_fields=["check_cooldown_minutes"])
    client = browser(enrolled)
    check = reverse("courses:module-check", args=[course.slug, "loss"])
    client.post(check, form_data(checked, right=False), HTTP_HX_REQUEST="true")
    for _ in range(2):
        source, page = served(client, lesson(course))
        assert source != "hit" and "your next attempt opens at" in page
    attempt = CheckAttempt.objects.get()
    attempt.submitted_at -= datetime.timedelta(minutes=31)
    attempt.save(update_fields=["submitted_at"])
    source, page = served(client, lesson(course))
    assert 'id="check-submit"' in page and "your next attempt opens at" not in page


def test_a_cached_page_keeps_its_draw_until_the_next_attempt(enrolled, course, checked):
    client = browser(enrolled)
    served(client, lesson(course))
    first = served(client, lesson(course))
    assert first[0] == "hit" and served(client, lesson(course))[1] == first[1]


def test_a_lesson_edit_shows_at_once(enrolled, course):
    client = browser(enrolled)
    served(client, lesson(course))
    module_set_body(module=Module.objects.get(slug="loss"), body_markdown="A **new** lesson")
    source, page = served(client, lesson(course))
    assert source == "miss" and "A <strong>new</strong> lesson" in page


def test_an_admin_edit_of_a_module_shows_at_once(enrolled, instructor, course):
    client = browser(enrolled)
    served(client, lesson(course))
    module = Module.objects.get(slug="intro")
    admin = Client()
    admin.force_login(instructor)
    data = {
        "course": course.pk,
        "stage": module.stage_id,
        "position": 1,
        "slug": "intro",
        "title": "Introduction, renamed",
        "kind": "theory",
        "required": "on",
        "estimated_minutes": 10,
        "summary": "",
        "body_markdown": "Hello",
        "check_pass_mark": 100,
        "check_cooldown_minutes": 0,
        **NO_QUESTIONS,
    }
    url = reverse("admin:courses_module_change", args=[module.pk])
    assert admin.post(url, data).status_code == 302
    source, page = served(client, lesson(course))  # the sidebar names every module
    assert source == "miss" and "Introduction, renamed" in page


def test_reimporting_a_course_folder_shows_at_once(learner, shipped_course):
    from labs.services.authoring import course_folder_import
    from tests.conftest import SHIPPED_COURSE

    Enrollment.objects.create(learner=learner, course=shipped_course)
    module_start(learner=learner, module=shipped_course.modules.get(slug="tokenisation"))
    client = browser(learner)
    url = lesson(shipped_course, "tokenisation")
    served(client, url)
    assert served(client, url)[0] == "hit"
    course_folder_import(path=SHIPPED_COURSE)  # unchanged, but an import may write with update()
    assert served(client, url)[0] == "miss"


def test_an_unpublished_course_is_not_served_from_the_cache(enrolled, course):
    client = browser(enrolled)
    served(client, lesson(course))
    course_set_published(course=course, published=False)
    assert client.get(lesson(course)).status_code == 404
    assert client.get(reverse("courses:course", args=[course.slug])).status_code == 404


def test_a_pending_message_is_shown_not_skipped_by_a_cached_page(enrolled, course):
    client = browser(enrolled)
    page = reverse("courses:course", args=[course.slug])
    served(client, page)
    assert served(client, page)[0] == "hit"
    # Enrolling again changes nothing but leaves a message for the next page.
    response = client.post(reverse("courses:enroll", args=[course.slug]), follow=True)
    assert "You are enrolled" in response.content.decode()
    assert response.get(HEADER) is None


@pytest.mark.parametrize(
    "why",
    ["not enrolled", "a lab page", "an htmx request", "no CSRF cookie yet", "draft course"],
)
def test_pages_that_must_be_rendered_are_never_stored(learner, instructor, course, why):
    user, url, headers = learner, lesson(course), {}
    if why != "not enrolled":
        enroll(learner, course)
    if why == "a lab page":
        for slug in ("intro", "loss"):  # open stage 2, where the lab is
            module_mark_complete(learner=learner, module=Module.objects.get(slug=slug))
        url = lesson(course, "lab")
    if why == "an htmx request":
        headers = {"HTTP_HX_REQUEST": "true"}
    if why == "draft course":
        user = instructor  # previews the draft, enrolled or not
        enroll(instructor, course)
        course_set_published(course=course, published=False)
    client = browser(user)
    for _ in range(2):
        if why == "no CSRF cookie yet":
            client.cookies.pop("csrftoken")
        response = client.get(url, **headers)
        assert response.status_code == 200
        assert response.get(HEADER) is None


def test_made_up_query_strings_share_one_cached_page(enrolled, course):
    client = browser(enrolled)
    served(client, lesson(course))
    assert served(client, lesson(course) + "?anything=1")[0] == "hit"
    assert served(client, lesson(course) + "?anything=2")[0] == "hit"


def test_an_enrollment_deleted_and_made_again_does_not_reuse_its_old_pages(learner, course):
    Enrollment.objects.create(learner=learner, course=course)  # version 0: nothing started
    client = browser(learner)
    page = reverse("courses:course", args=[course.slug])
    served(client, page)
    assert served(client, page)[0] == "hit"
    Enrollment.objects.filter(learner=learner, course=course).delete()
    Enrollment.objects.create(learner=learner, course=course)  # version 0 again
    assert served(client, page)[0] == "miss"

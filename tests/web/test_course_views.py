from __future__ import annotations

import pytest
from django.urls import reverse

from courses.models import Enrollment, Module
from grading.models import ModuleProgress
from grading.services import module_mark_complete

HTMX = {"HTTP_HX_REQUEST": "true"}


def module_url(course, slug, name="courses:module"):
    return reverse(name, args=[course.slug, slug])


def test_anonymous_visitors_are_sent_to_sign_in(client, course):
    response = client.get(reverse("courses:course", args=[course.slug]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_catalog_lists_published_courses_only(client, learner, course):
    course.__class__.objects.create(slug="draft", title="Secret draft", is_published=False)
    client.force_login(learner)
    page = client.get(reverse("courses:catalog")).content.decode()
    assert "Demo course" in page
    assert "Secret draft" not in page


@pytest.mark.parametrize("slug", ["no-such-course", "draft"])
def test_unknown_or_unpublished_course_is_404(client, learner, course, slug):
    course.__class__.objects.create(slug="draft", title="Draft", is_published=False)
    client.force_login(learner)
    assert client.get(reverse("courses:course", args=[slug])).status_code == 404
    assert client.get(reverse("courses:module", args=[slug, "intro"])).status_code == 404


def test_instructor_can_preview_an_unpublished_course(client, instructor, course):
    course.is_published = False
    course.save()
    client.force_login(instructor)
    page = client.get(reverse("courses:course", args=[course.slug])).content.decode()
    assert "Unpublished" in page


def test_unknown_module_is_404(client, learner, course):
    client.force_login(learner)
    assert client.get(module_url(course, "nope")).status_code == 404


def test_course_page_shows_stage_map_progress_and_due_date(client, learner, course):
    import datetime

    Enrollment.objects.create(learner=learner, course=course, due_date=datetime.date(2030, 1, 31))
    module_mark_complete(learner=learner, module=Module.objects.get(slug="intro"))
    client.force_login(learner)
    page = client.get(reverse("courses:course", args=[course.slug])).content.decode()
    assert "Stage 1" in page and "Stage 2" in page
    # A CSS padlock, not the emoji (an empty box where no emoji font is installed).
    assert '<span class="lock-icon" aria-hidden="true"></span>Locked' in page and "🔒" not in page
    assert 'aria-valuenow="25"' in page
    assert "31 Jan 2030" in page


# Rendered (not from the page cache): session, user, the page cache's version lookup,
# two permission queries (may preview drafts?), course, stages, modules, progress,
# enrollment: the same ten however many modules the course has.
COURSE_PAGE_QUERIES = 10


def test_course_page_query_count_does_not_grow_with_the_course(
    client, learner, course, django_assert_num_queries
):
    from courses.services import course_content_changed, enrollment_create
    from tests.factories import ModuleFactory

    enrollment_create(learner=learner, course=course)
    client.force_login(learner)
    client.get(reverse("courses:catalog"))  # a browser holds a CSRF cookie
    with django_assert_num_queries(COURSE_PAGE_QUERIES):
        client.get(reverse("courses:course", args=[course.slug]))
    stage = course.stages.first()
    for i in range(20):
        ModuleFactory(course=course, stage=stage, slug=f"more-{i}", position=10 + i)
    course_content_changed(course=course)  # as the admin and the importer do
    with django_assert_num_queries(COURSE_PAGE_QUERIES):
        client.get(reverse("courses:course", args=[course.slug]))


def test_lesson_page_renders_stored_html_with_previous_and_next(client, learner, course):
    client.force_login(learner)
    page = client.get(module_url(course, "loss")).content.decode()
    assert "<math" in page
    assert 'rel="prev"' in page and "Intro" in page
    assert 'rel="next"' in page and "Extra" in page
    assert ModuleProgress.objects.get(learner=learner, module__slug="loss").status == "in_progress"


def test_locked_module_page_says_what_is_missing_and_links_to_it(client, learner, course):
    client.force_login(learner)
    response = client.get(module_url(course, "deeper"))
    page = response.content.decode()
    assert "This module is locked" in page
    assert module_url(course, "intro") in page and module_url(course, "loss") in page
    assert "Some <em>lesson</em>" not in page  # the lesson itself is not shown
    assert not ModuleProgress.objects.filter(learner=learner, module__slug="deeper").exists()


def test_mark_complete_via_htmx_returns_the_progress_panel(client, learner, course):
    client.force_login(learner)
    response = client.post(module_url(course, "intro", "courses:module-complete"), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="progress-panel"')
    assert "<html" not in body
    assert "✓ Completed" in body
    assert (
        response.headers["Vary"] == "HX-Request, Cookie" or "HX-Request" in response.headers["Vary"]
    )


def test_completing_the_last_required_module_unlocks_the_next_stage_in_the_panel(
    client, learner, course
):
    client.force_login(learner)
    client.post(module_url(course, "intro", "courses:module-complete"), **HTMX)
    body = client.post(
        module_url(course, "loss", "courses:module-complete"), **HTMX
    ).content.decode()
    assert 'class="stage open" data-stage="advanced"' in body


def test_posting_complete_for_a_locked_module_is_refused(client, learner, course):
    client.force_login(learner)
    response = client.post(module_url(course, "deeper", "courses:module-complete"), **HTMX)
    assert response.status_code == 403
    assert "This module is locked" in response.content.decode()
    assert not ModuleProgress.objects.filter(
        learner=learner, module__slug="deeper", status="completed"
    ).exists()


def test_posting_complete_without_htmx_redirects_with_a_message(client, learner, course):
    client.force_login(learner)
    response = client.post(module_url(course, "deeper", "courses:module-complete"), follow=True)
    assert "This module is locked" in response.content.decode()


def test_complete_requires_post(client, learner, course):
    client.force_login(learner)
    assert client.get(module_url(course, "intro", "courses:module-complete")).status_code == 405


def test_enroll_then_my_learning_lists_the_course(client, learner, course):
    client.force_login(learner)
    client.post(reverse("courses:enroll", args=[course.slug]))
    page = client.get(reverse("courses:my-learning")).content.decode()
    assert "Demo course" in page
    assert "Continue: Intro" in page

"""The draft preview is the learner page itself; the learner sees the published lesson."""

from __future__ import annotations

import pytest

from courses.models import Module
from courses.services import module_draft_save
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_draft_preview_matches_the_learner_page_and_learners_see_only_the_published_text(
    live_server, page, screenshot, shipped_course, demo_passwords
):
    module = Module.objects.filter(course=shipped_course, kind="theory").order_by("id").first()
    module_draft_save(
        module=module, body_markdown=module.body_markdown + "\n\n## A draft section\n\nNot yet.\n"
    )
    sign_in(page, live_server, "instructor", demo_passwords["instructor"])
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{module.slug}/preview/")
    assert "A draft section" in page.inner_text(".lesson-body")
    assert "learners still see the published lesson" in page.inner_text(".preview-banner")
    preview_font = page.eval_on_selector(".lesson-body h2", "e => getComputedStyle(e).fontSize")
    screenshot("draft-01-preview")

    page.click("button:has-text('Sign out')")
    sign_in(page, live_server, "learner", demo_passwords["learner"])
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{module.slug}/")
    assert "A draft section" not in page.inner_text(".lesson-body")
    assert page.locator(".preview-banner").count() == 0
    # The same stylesheet styles both: a heading is the same size in each.
    assert page.eval_on_selector(".lesson-body h2", "e => getComputedStyle(e).fontSize") == (
        preview_font
    )
    screenshot("draft-02-learner-page")

"""An instructor's edit can wait as a draft: previewed on the learner page, live on publish."""

from __future__ import annotations

from django.urls import reverse

from courses.models import Module
from tests.courses.test_admin import NO_QUESTIONS


def module_form(module: Module, body: str) -> dict[str, object]:
    return {
        "course": module.course_id,
        "stage": module.stage_id,
        "position": module.position,
        "slug": module.slug,
        "title": module.title,
        "kind": module.kind,
        "required": "on",
        "estimated_minutes": module.estimated_minutes,
        "summary": "",
        "body_markdown": body,
        "check_pass_mark": 100,
        "check_cooldown_minutes": 0,
        **NO_QUESTIONS,
    }


def test_a_draft_edit_is_invisible_to_learners_until_published(client, instructor, learner, course):
    module = Module.objects.get(slug="intro")
    learner_url = reverse("courses:module", args=[course.slug, module.slug])
    preview_url = reverse("courses:module-preview", args=[course.slug, module.slug])
    change_url = reverse("admin:courses_module_change", args=[module.pk])
    client.force_login(learner)
    assert "Unpublished **idea**" not in client.get(learner_url).content.decode()  # cached now

    client.force_login(instructor)
    saved = client.post(
        change_url, {**module_form(module, "Unpublished **idea**"), "_save_draft": "1"}
    )
    assert saved.status_code == 302 and saved.url == change_url  # stays on the editor
    module.refresh_from_db()
    assert module.draft_saved_at is not None
    assert "<strong>idea</strong>" in module.draft_html
    assert "idea" not in module.body_html
    # The editor goes on with the draft; the preview is the learner page with it.
    assert "Unpublished **idea**" in client.get(change_url).content.decode()
    preview = client.get(preview_url).content.decode()
    assert "Unpublished <strong>idea</strong>" in preview
    assert "css/academy.css" in preview and '<div class="lesson-body">' in preview
    assert "learners still see the published lesson" in preview

    client.force_login(learner)
    assert "idea" not in client.get(learner_url).content.decode()
    assert client.get(preview_url).status_code == 404  # a learner has no preview of drafts

    client.force_login(instructor)
    published = client.post(change_url, module_form(module, "Unpublished **idea**"))
    assert published.status_code == 302
    module.refresh_from_db()
    assert module.draft_saved_at is None and module.draft_markdown == ""

    client.force_login(learner)
    assert "Unpublished <strong>idea</strong>" in client.get(learner_url).content.decode()


def test_the_body_editor_is_as_wide_as_the_form_and_offers_save_as_draft(
    client, instructor, course
):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    page = client.get(reverse("admin:courses_module_change", args=[module.pk])).content.decode()
    assert 'class="body-editor"' in page and "css/admin-authoring.css" in page
    assert 'name="_save_draft"' in page
    assert reverse("courses:module-preview", args=[course.slug, module.slug]) in page

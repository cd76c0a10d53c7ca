from __future__ import annotations

import io
import zipfile

from django.urls import reverse

from courses.models import Course, Module
from courses.rendering import pygments_css

# An empty inline of a change page: its management form.
NO_TRANSLATIONS = {
    "translations-TOTAL_FORMS": 0,
    "translations-INITIAL_FORMS": 0,
    "translations-MIN_NUM_FORMS": 0,
    "translations-MAX_NUM_FORMS": 1000,
}
# The module page's knowledge-check and translation inlines, empty.
NO_QUESTIONS = {
    "questions-TOTAL_FORMS": 0,
    "questions-INITIAL_FORMS": 0,
    "questions-MIN_NUM_FORMS": 0,
    "questions-MAX_NUM_FORMS": 1000,
    **NO_TRANSLATIONS,
}


def test_instructor_previews_a_module_on_the_learner_page_itself(client, instructor, course):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    page = client.get(reverse("admin:courses_module_change", args=[module.pk])).content.decode()
    preview_url = reverse("courses:module-preview", args=[course.slug, module.slug])
    assert f'href="{preview_url}"' in page
    preview = client.get(preview_url).content.decode()
    assert "<math" in preview and '<div class="lesson-body">' in preview


def test_saving_a_module_renders_it_once_and_broken_math_is_a_form_error(
    client, instructor, course
):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    url = reverse("admin:courses_module_change", args=[module.pk])
    data = {
        "course": course.pk,
        "stage": module.stage_id,
        "position": 1,
        "slug": "intro",
        "title": "Intro",
        "kind": "theory",
        "required": "on",
        "estimated_minutes": 10,
        "summary": "",
        "body_markdown": "Fine\n\n$\\frac{a}{b$",
        "check_pass_mark": 100,
        "check_cooldown_minutes": 0,
        **NO_QUESTIONS,
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Line 3: Unbalanced braces" in response.content.decode()
    data["body_markdown"] = "Now **bold** with $y$\n\n<script>x()</script>"
    # A raw <script> is refused at its line (issue 18, finding 9), not silently dropped.
    assert "Line 3: raw &lt;script&gt; is not allowed" in client.post(url, data).content.decode()
    data["body_markdown"] = "Now **bold** with $y$"
    assert client.post(url, data).status_code == 302
    module.refresh_from_db()
    assert "<strong>bold</strong>" in module.body_html and "<script" not in module.body_html


def test_learner_cannot_reach_the_admin(client, learner):
    client.force_login(learner)
    response = client.get(reverse("admin:courses_course_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_publish_and_unpublish_actions(client, instructor, course):
    client.force_login(instructor)
    url = reverse("admin:courses_course_changelist")
    client.post(url, {"action": "unpublish", "_selected_action": [course.pk]})
    assert not Course.objects.get(pk=course.pk).is_published
    client.post(url, {"action": "publish", "_selected_action": [course.pk]})
    assert Course.objects.get(pk=course.pk).is_published


def test_course_folder_zip_upload_imports_the_course(client, instructor):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "c/course.yaml", "slug: zipped\ntitle: Zipped\nstages:\n  - slug: s\n    title: S\n"
        )
        archive.writestr("c/s/01-m.md", "---\nslug: m\ntitle: M\nkind: theory\n---\nHello\n")
    buffer.seek(0)
    buffer.name = "course.zip"
    client.force_login(instructor)
    response = client.post(reverse("admin:courses_course_upload"), {"archive": buffer}, follow=True)
    assert "Course &#x27;zipped&#x27;: 3 created" in response.content.decode()
    assert Course.objects.get(slug="zipped").modules.count() == 1


def test_broken_zip_upload_shows_the_error_and_imports_nothing(client, instructor):
    buffer = io.BytesIO(b"not a zip")
    buffer.name = "course.zip"
    client.force_login(instructor)
    response = client.post(reverse("admin:courses_course_upload"), {"archive": buffer})
    assert "not a zip file" in response.content.decode()
    assert not Course.objects.exists()


def test_committed_pygments_css_matches_the_generator(settings):
    committed = (settings.BASE_DIR / "static" / "css" / "pygments.css").read_text()
    assert pygments_css() in committed, "run `manage.py build_pygments_css`"

"""Finding 9: lesson HTML could carry any id and class (an `id="progress-panel"` received the
app's htmx swap), and an unclosed <style> silently dropped the rest of the lesson."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from courses.rendering import APP_ELEMENT_IDS, MarkdownError, render_markdown

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_finding_09_an_author_cannot_take_an_id_of_the_app():
    html = render_markdown('<div id="progress-panel" class="button primary">x</div>').html
    assert "progress-panel" not in html and "button" not in html and "x" in html


def test_finding_09_a_heading_named_like_an_app_element_gets_an_anchor_of_its_own():
    rendered = render_markdown("## Progress panel\n\nText\n")
    assert 'id="progress-panel-section"' in rendered.html
    assert rendered.headings == [(2, "progress-panel-section", "Progress panel")]


def test_finding_09_heading_anchors_and_the_renderers_classes_are_kept():
    html = render_markdown('# Title\n\n!!! note "Hi"\n    body\n\n```python\nx = 1\n```\n').html
    assert 'id="title"' in html and 'class="headerlink"' in html
    assert 'class="admonition note"' in html and 'class="codehilite"' in html


def test_finding_09_the_reserved_ids_are_every_id_the_templates_use():
    used = {
        "".join(match)
        for path in TEMPLATES.rglob("*.html")
        # An element's id, or the id of the <script> a json_script filter writes.
        for match in re.findall(
            r'\bid="([A-Za-z][\w-]*)"|json_script:"([A-Za-z][\w-]*)"', path.read_text()
        )
    }
    assert used == APP_ELEMENT_IDS


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("<style>p { display: none }", "style"), ("<SCRIPT>alert(1)</SCRIPT>", "script")],
)
def test_finding_09_raw_style_or_script_is_refused_at_its_line(raw, tag):
    with pytest.raises(MarkdownError) as error:
        render_markdown(f"Intro\n\n{raw}\n\nThe rest of the lesson.\n")
    assert error.value.line == 3
    assert f"raw <{tag}> is not allowed in a lesson" in error.value.message


def test_finding_09_style_and_script_in_code_stay_allowed():
    html = render_markdown("Use `<script>` tags.\n\n```html\n<style>p {}</style>\n```\n").html
    assert "&lt;script&gt;" in html and '<span class="nt">style</span>' in html

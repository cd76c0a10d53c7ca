from __future__ import annotations

import pytest

from courses.rendering import MarkdownError, render_markdown


def test_inline_and_display_math_become_mathml_without_javascript():
    html = render_markdown("Loss $L_i$ is\n\n$$\n\\frac{1}{N}\\sum_{i=1}^{N} L_i\n$$\n").html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert 'display="block"' in html
    assert "<mfrac>" in html
    assert "<script" not in html


def test_dollar_signs_in_code_stay_literal():
    html = render_markdown("Use `$HOME` here.\n\n```bash\necho $PATH and $HOME\n```\n").html
    assert "<code>$HOME</code>" in html
    assert "<math" not in html


def test_escaped_dollar_is_a_plain_dollar():
    html = render_markdown("It costs \\$5 and \\$6.").html
    assert "<math" not in html
    assert "$5" in html


def test_fenced_code_is_highlighted_by_pygments():
    html = render_markdown("```python\ndef f(x):\n    return x\n```\n").html
    assert '<div class="codehilite">' in html
    assert '<span class="k">def</span>' in html


def test_tables_anchors_and_admonitions_render():
    html = render_markdown(
        '## Metrics table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n!!! warning "Careful"\n    Indented $x$.\n'
    ).html
    assert '<h2 id="metrics-table">' in html
    assert 'href="#metrics-table"' in html
    assert "<table>" in html and "<td>1</td>" in html
    assert '<div class="admonition warning">' in html
    assert "<math" in html


@pytest.mark.parametrize(
    "hostile",
    [
        '<img src="x" onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<svg onload="alert(1)"><title>t</title></svg>',
        '<iframe src="https://example.com"></iframe>',
        '<div style="background:url(javascript:alert(1))">x</div>',
    ],
)
def test_instructor_html_that_could_run_script_is_removed(hostile):
    html = render_markdown(f"Before\n\n{hostile}\n\nAfter").html
    lowered = html.lower()
    assert "<script" not in lowered
    assert "onerror" not in lowered and "onload" not in lowered
    assert "javascript:" not in lowered
    assert "<iframe" not in lowered
    assert "style=" not in lowered
    assert "After" in html


def test_inline_svg_diagrams_survive_sanitising():
    svg = '<svg viewBox="0 0 10 10" role="img"><title>Box</title><rect x="1" y="1" width="8" height="8" fill="#ccc"/></svg>'
    html = render_markdown(svg).html
    assert 'viewBox="0 0 10 10"' in html
    assert "<rect" in html


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("ok\n\n$\\frac{a}{b$", 3, "Unbalanced braces"),
        ("ok\n$\\notacommand x$", 2, "Unknown TeX command \\notacommand"),
        ("a\nb\n$$\nx^2\n", 3, "never closed"),
        ("$x^$", 1, "Cannot render math"),
    ],
)
def test_broken_math_is_refused_with_its_line(source, line, fragment):
    with pytest.raises(MarkdownError) as info:
        render_markdown(source)
    assert info.value.line == line
    assert fragment in info.value.message


def test_a_display_formula_keeps_the_box_it_scrolls_in_on_a_phone():
    # The class allow-list once stripped it, and a wide formula widened the whole page.
    html = render_markdown("$$\n\\frac{a}{b} + \\frac{c}{d}\n$$\n").html
    assert '<div class="math-display"><math' in html

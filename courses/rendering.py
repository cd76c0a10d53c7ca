"""Course Markdown → sanitised HTML, done once when a module is saved or imported.

Pipeline: TeX math is pulled out first (so Markdown never mangles `_` or `*`
inside a formula) and converted to MathML server-side; Python-Markdown renders
the rest (fenced code highlighted by Pygments, tables, heading anchors,
admonitions); nh3's allow-list sanitiser then drops anything an instructor
should not be able to ship to a learner's browser, `<script>` first of all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import markdown
import nh3
from latex2mathml.converter import convert as tex_to_mathml
from markdown.extensions.toc import slugify as toc_slugify
from markdown.preprocessors import Preprocessor
from pygments.token import STANDARD_TYPES

PYGMENTS_CSS_CLASS = "codehilite"

_FENCE = re.compile(r"^\s*(```|~~~)")
# Inline code spans are matched first so a `$` inside backticks stays literal.
_INLINE = re.compile(
    r"(?P<code>`+[^`]*?`+)"
    r"|(?P<escaped>\\\$)"
    r"|\$\$(?P<display>[^$]+?)\$\$"
    r"|(?<![\w$])\$(?P<inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?!\d)"
)
_UNKNOWN_COMMAND = re.compile(r">(\\[A-Za-z]+)<")


class MarkdownError(ValueError):
    """A lesson that cannot be rendered; `line` is 1-based within the Markdown body."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def tex(formula: str, *, display: bool, line: int) -> str:
    """Convert one TeX formula to MathML, refusing what latex2mathml would pass through."""
    depth = 0
    for char in formula.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        raise MarkdownError(f"Unbalanced braces in math: ${formula}$", line=line)
    try:
        mathml = tex_to_mathml(formula, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises many ad-hoc exception types
        detail = str(exc) or type(exc).__name__
        raise MarkdownError(f"Cannot render math ${formula}$: {detail}", line=line) from None
    unknown = _UNKNOWN_COMMAND.search(mathml)
    if unknown:
        raise MarkdownError(
            f"Unknown TeX command {unknown.group(1)} in math: ${formula}$", line=line
        )
    return mathml


class MathPreprocessor(Preprocessor):
    """Replaces `$…$` and `$$…$$` with stashed MathML before Markdown parses the text."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fence: str | None = None
        block: list[str] | None = None
        block_start = 0
        for number, line in enumerate(lines, start=1):
            marker = _FENCE.match(line)
            if block is None and marker and (fence is None or marker.group(1) == fence):
                fence = None if fence else marker.group(1)
                out.append(line)
                continue
            if fence:
                out.append(line)
                continue
            if line.strip() == "$$":
                if block is None:
                    block, block_start = [], number
                else:
                    out.append(self._display(" ".join(block), line=block_start))
                    block = None
                continue
            if block is not None:
                block.append(line.strip())
                continue
            out.append(self._inline(line, line_number=number))
        if block is not None:
            raise MarkdownError("Display math opened with $$ is never closed.", line=block_start)
        return out

    def _display(self, formula: str, *, line: int) -> str:
        html = f'<div class="math-display">{tex(formula, display=True, line=line)}</div>'
        return self.md.htmlStash.store(html)

    def _inline(self, text: str, *, line_number: int) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group("code"):
                return match.group("code")
            if match.group("escaped"):
                return "&#36;"
            if match.group("display") is not None:
                return self._display(match.group("display").strip(), line=line_number)
            formula = match.group("inline")
            return self.md.htmlStash.store(tex(formula, display=False, line=line_number))

        return _INLINE.sub(replace, text)


_MATHML_TAGS = {
    "math",
    "semantics",
    "annotation",
    "mrow",
    "mi",
    "mn",
    "mo",
    "ms",
    "mtext",
    "mspace",
    "msup",
    "msub",
    "msubsup",
    "mfrac",
    "msqrt",
    "mroot",
    "mover",
    "munder",
    "munderover",
    "mtable",
    "mtr",
    "mtd",
    "mstyle",
    "mpadded",
    "mphantom",
    "menclose",
    "merror",
}
_SVG_TAGS = {
    "svg",
    "g",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "title",
    "desc",
    "defs",
    "marker",
}
_MATHML_ATTRS = {
    "xmlns",
    "display",
    "mathvariant",
    "stretchy",
    "fence",
    "separator",
    "accent",
    "accentunder",
    "lspace",
    "rspace",
    "width",
    "height",
    "depth",
    "columnalign",
    "rowspacing",
    "columnspacing",
    "linethickness",
    "notation",
    "minsize",
    "maxsize",
    "movablelimits",
    "symmetric",
    "form",
    "largeop",
    "displaystyle",
    "scriptlevel",
}
_SVG_ATTRS = {
    "viewBox",
    "xmlns",
    "width",
    "height",
    "role",
    "aria-label",
    "aria-hidden",
    "fill",
    "stroke",
    "stroke-width",
    "stroke-dasharray",
    "stroke-linecap",
    "stroke-linejoin",
    "opacity",
    "fill-opacity",
    "d",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "points",
    "transform",
    "text-anchor",
    "dominant-baseline",
    "font-size",
    "font-weight",
    "font-family",
    "marker-end",
    "marker-start",
    "markerWidth",
    "markerHeight",
    "refX",
    "refY",
    "orient",
    "preserveAspectRatio",
    "dx",
    "dy",
}
_HTML_TAGS = set(nh3.ALLOWED_TAGS) | {"div", "span", "pre", "code", "details", "summary"}

ALLOWED_TAGS = _HTML_TAGS | _MATHML_TAGS | _SVG_TAGS
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "id", "title", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "th": {"align", "colspan", "rowspan"},
    "td": {"align", "colspan", "rowspan"},
    "ol": {"start"},
    **{tag: _MATHML_ATTRS for tag in _MATHML_TAGS},
    **{tag: _SVG_ATTRS for tag in _SVG_TAGS},
}


# Element ids the app's own pages use (templates/): a lesson element with one of them would
# receive the app's htmx swaps (a lesson's `id="progress-panel"` showed "✓ Completed"). A
# test holds this set equal to the ids in the templates.
APP_ELEMENT_IDS = frozenset(
    {
        "attribution", "check-submit", "code-editor", "editor", "editor-codes", "editor-loaded",
        "editor-sources", "export-csv", "export-json",
        "history", "id_password", "id_username", "knowledge-check", "knowledge-check-title",
        "lab-bar", "learner-table", "locked", "main", "mark-complete", "progress-panel", "report-body",
        "report-filters", "result", "run-panel", "run-status", "sort-input", "submit-error",
        "submit-run", "takehome", "takehome-locked",
        "compare-chart", "compare-diff", "compare-error", "compare-form", "compare-runs",
        "compare-table", "dev-analysis", "import-errors", "import-preview", "language-select",
        "precheck-error", "precheck-panel", "precheck-run", "prediction", "preview-title",
        "try-error", "try-model", "try-run", "try-texts",
    }
)  # fmt: skip
# The classes the renderer itself writes: admonitions, heading permalinks, Pygments' code
# block and its token classes. An author's own class could borrow the app's styles or hooks.
ADMONITION_KINDS = frozenset(
    {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error"}
)
RENDERER_CLASSES = (
    # "diagram": a lesson's <figure> of an SVG drawing; "math-display": the box a $$ formula
    # scrolls in on a phone (both styled in academy.css).
    frozenset(
        {
            "admonition",
            "admonition-title",
            "headerlink",
            "diagram",
            "math-display",
            PYGMENTS_CSS_CLASS,
        }
    )
    | ADMONITION_KINDS
    | frozenset(value for value in STANDARD_TYPES.values() if value)
)
# Deeper than this, a list or quote is an accident (or an attack): Python-Markdown recurses
# once per level, and 300 levels ran for 24 s before a RecursionError.
MAX_NESTING = 16
_LIST_ITEM = re.compile(r"^( *)(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
_QUOTE = re.compile(r"^ {0,3}((?:> ?)+)")
_RAW_BLOCK = re.compile(r"<\s*(script|style)\b", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+).*?\1")


def _check_source(source: str) -> None:
    """Refuse what the sanitiser would silently mangle, and nesting that exhausts the parser.

    An unclosed `<style>` made nh3 drop the rest of the lesson without a word; a raw
    `<script>` or `<style>` is never kept, so an author hears about it at the line."""
    fence: str | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        expanded = line.expandtabs(4)
        item = _LIST_ITEM.match(expanded)
        if item and len(item.group(1)) >= 4 * MAX_NESTING:
            raise MarkdownError(
                f"lists are nested more than {MAX_NESTING} levels deep", line=number
            )
        quote = _QUOTE.match(expanded)
        if quote and quote.group(1).count(">") > MAX_NESTING:
            raise MarkdownError(
                f"quotes are nested more than {MAX_NESTING} levels deep", line=number
            )
        raw = _RAW_BLOCK.search(_CODE_SPAN.sub("", line))
        if raw and not expanded.startswith("    "):
            tag = raw.group(1).lower()
            raise MarkdownError(
                f"raw <{tag}> is not allowed in a lesson (it would be removed); "
                "put code in a fenced block",
                line=number,
            )


def _slugify(value: str, separator: str) -> str:
    slug = toc_slugify(value, separator)
    # A heading such as "Progress panel" must not take the id of an element of the page.
    return f"{slug}-section" if slug in APP_ELEMENT_IDS else slug


def sanitise(html: str, *, anchors: frozenset[str] = frozenset()) -> str:
    """Allow-listed tags and attributes; ids only the heading anchors this render made (and
    an SVG drawing's own, e.g. an arrow's <marker>), never the app's; classes only the
    renderer's own."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute == "id":
            ours = value in anchors or tag in _SVG_TAGS
            return value if ours and value not in APP_ELEMENT_IDS else None
        if attribute == "class":
            classes = [name for name in value.split() if name in RENDERER_CLASSES]
            return " ".join(classes) or None
        return value

    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


@dataclass(frozen=True)
class Rendered:
    html: str
    headings: list[tuple[int, str, str]]  # (level, anchor id, text)


def render_markdown(source: str) -> Rendered:
    """Render lesson Markdown to sanitised HTML. Raises MarkdownError with a line number."""
    md = markdown.Markdown(
        extensions=["fenced_code", "codehilite", "tables", "toc", "admonition", "sane_lists"],
        extension_configs={
            "codehilite": {"css_class": PYGMENTS_CSS_CLASS, "guess_lang": False},
            "toc": {
                "permalink": "#",
                "permalink_title": "Link to this section",
                "slugify": _slugify,
            },
        },
    )
    md.preprocessors.register(MathPreprocessor(md), "academy_math", 28)
    _check_source(source)
    try:
        html = md.convert(source)
    except RecursionError:
        raise MarkdownError(
            f"the lesson is nested too deeply to render (at most {MAX_NESTING} levels)"
        ) from None
    headings = [(t["level"], t["id"], t["name"]) for t in _flatten(md.toc_tokens)]
    anchors = frozenset(anchor for _, anchor, _ in headings)
    return Rendered(html=sanitise(html, anchors=anchors), headings=headings)


def _flatten(tokens: list[dict]) -> list[dict]:
    flat: list[dict] = []
    for token in tokens:
        flat.append(token)
        flat.extend(_flatten(token.get("children", [])))
    return flat


def pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="friendly").get_style_defs(f".{PYGMENTS_CSS_CLASS}")

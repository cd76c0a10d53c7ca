"""Course-as-code: read a course folder into plain data, checking everything first.

A course folder looks like::

    fine-tuning-at-work/
        course.yaml                 # slug, title, summary, published, stages: [slug, title, summary]
        foundations/                # one folder per stage, named by the stage slug
            01-what-is-a-pretrained-model.md
            ...

Each module file starts with YAML front matter (slug, title, kind, required,
minutes, summary, an optional knowledge `check:`; apps above `courses` may add
their own sections such as `lab:`) followed by the Markdown body. Parsing never touches the database;
`courses.services.course_import` writes the result in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from courses.rendering import MarkdownError, render_markdown

MODULE_KINDS = {"theory", "lab", "case_study"}
MODULE_KEYS = {"slug", "title", "kind", "required", "minutes", "summary", "check"}
# Sections owned by apps that build on courses (labs); kept as-is for them.
EXTENSION_KEYS = {"lab"}
CHECK_KEYS = {"pass_mark", "questions"}
QUESTION_KEYS = {"id", "prompt", "options"}
OPTION_KEYS = {"text", "correct", "explanation"}
CHECK_KINDS = {"theory", "case_study"}
MAX_QUESTIONS = 20
MAX_OPTIONS = 8
COURSE_KEYS = {"slug", "title", "summary", "published", "stages"}
STAGE_KEYS = {"slug", "title", "summary"}


class CourseFolderError(ValueError):
    """A problem in a course folder, always naming the file and, where known, the line."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        location = f"{path}:{line}" if line else str(path)
        super().__init__(f"{location}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


@dataclass
class OptionSpec:
    text_markdown: str
    text_html: str
    correct: bool
    explanation_markdown: str
    explanation_html: str


@dataclass
class QuestionSpec:
    key: str
    prompt_markdown: str
    prompt_html: str
    options: list[OptionSpec]

    @property
    def fingerprint(self) -> str:
        return question_fingerprint(
            self.prompt_markdown, [(o.text_markdown, o.correct) for o in self.options]
        )


@dataclass
class CheckSpec:
    pass_mark: int
    questions: list[QuestionSpec]


def canonical_body(text: str) -> str:
    """A module body as the importer stores it; the admin stores the same, so an exported
    course imports back unchanged (browsers post text areas with CRLF line ends)."""
    return text.replace("\r\n", "\n").strip("\n") + "\n"


def canonical_text(text: str) -> str:
    """A question's prompt, option or explanation as stored (see canonical_body)."""
    return text.replace("\r\n", "\n").strip() + "\n"


def question_fingerprint(prompt: str, options: list[tuple[str, bool]]) -> str:
    """What a learner answers: the prompt and the options with their correctness, in order."""
    payload = json.dumps([prompt.strip(), [[text.strip(), bool(ok)] for text, ok in options]])
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ModuleSpec:
    slug: str
    title: str
    kind: str
    required: bool
    minutes: int
    summary: str
    body_markdown: str
    body_html: str
    source_path: str
    extensions: dict[str, Any] = field(default_factory=dict)
    check: CheckSpec | None = None


@dataclass
class StageSpec:
    slug: str
    title: str
    summary: str
    modules: list[ModuleSpec] = field(default_factory=list)


@dataclass
class CourseSpec:
    slug: str
    title: str
    summary: str
    published: bool
    root: Path
    stages: list[StageSpec] = field(default_factory=list)

    @property
    def modules(self) -> list[ModuleSpec]:
        return [module for stage in self.stages for module in stage.modules]


def parse_course_folder(root: Path | str) -> CourseSpec:
    root = Path(root)
    meta_path = root / "course.yaml"
    if not meta_path.is_file():
        raise CourseFolderError(root, "not a course folder: course.yaml is missing")
    meta = _load_yaml(meta_path, meta_path.read_text(encoding="utf-8"), line_offset=0)
    _check_keys(meta_path, meta, required={"slug", "title", "stages"}, allowed=COURSE_KEYS)
    if not isinstance(meta["stages"], list) or not meta["stages"]:
        raise CourseFolderError(meta_path, "'stages' must be a non-empty list")

    course = CourseSpec(
        slug=_slug(meta_path, meta["slug"]),
        title=str(meta["title"]),
        summary=str(meta.get("summary", "")).strip(),
        published=bool(meta.get("published", True)),
        root=root,
    )
    seen_stages: set[str] = set()
    seen_modules: dict[str, Path] = {}
    for raw_stage in meta["stages"]:
        if not isinstance(raw_stage, dict):
            raise CourseFolderError(meta_path, "each stage must be a mapping with slug and title")
        _check_keys(meta_path, raw_stage, required={"slug", "title"}, allowed=STAGE_KEYS)
        stage = StageSpec(
            slug=_slug(meta_path, raw_stage["slug"]),
            title=str(raw_stage["title"]),
            summary=str(raw_stage.get("summary", "")).strip(),
        )
        if stage.slug in seen_stages:
            raise CourseFolderError(meta_path, f"duplicate stage slug '{stage.slug}'")
        seen_stages.add(stage.slug)
        stage_dir = root / stage.slug
        if not stage_dir.is_dir():
            raise CourseFolderError(stage_dir, f"folder for stage '{stage.slug}' is missing")
        for path in sorted(stage_dir.glob("*.md")):
            module = parse_module_file(path, relative_to=root)
            if module.slug in seen_modules:
                raise CourseFolderError(
                    path,
                    f"duplicate module slug '{module.slug}' (also used in {seen_modules[module.slug]})",
                    line=_line_of_key(path.read_text(encoding="utf-8"), "slug"),
                )
            seen_modules[module.slug] = path.relative_to(root)
            stage.modules.append(module)
        course.stages.append(stage)
    return course


def parse_module_file(path: Path, *, relative_to: Path) -> ModuleSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CourseFolderError(path, f"not UTF-8 text ({exc.reason})") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise CourseFolderError(
            path, "missing front matter: the file must start with '---'", line=1
        )
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise CourseFolderError(path, "front matter is never closed with '---'", line=1) from None
    front_text = "\n".join(lines[1:end])
    front = _load_yaml(path, front_text, line_offset=1)
    _check_keys(
        path, front, required={"slug", "title", "kind"}, allowed=MODULE_KEYS | EXTENSION_KEYS
    )
    kind = front["kind"]
    if kind not in MODULE_KINDS:
        raise CourseFolderError(
            path,
            f"unknown module kind '{kind}' (expected one of: {', '.join(sorted(MODULE_KINDS))})",
            line=1 + _line_of_key(front_text, "kind"),
        )
    minutes = front.get("minutes", 15)
    if not isinstance(minutes, int) or minutes <= 0:
        raise CourseFolderError(
            path,
            "'minutes' must be a positive whole number",
            line=1 + _line_of_key(front_text, "minutes"),
        )
    check = None
    if "check" in front:
        if kind not in CHECK_KINDS:
            raise CourseFolderError(
                path,
                "a knowledge 'check:' is only allowed on theory and case_study modules",
                line=1 + _line_of_key(front_text, "check"),
            )
        check = _parse_check(path, front["check"], _node_lines(front_text))
    # The body keeps its leading blank lines so Markdown line N is file line end + 1 + N.
    body = "\n".join(lines[end + 1 :]) + "\n"
    try:
        rendered = render_markdown(body)
    except MarkdownError as exc:
        raise CourseFolderError(path, exc.message, line=end + 1 + (exc.line or 1)) from None
    return ModuleSpec(
        slug=_slug(path, front["slug"]),
        title=str(front["title"]),
        kind=kind,
        required=bool(front.get("required", True)),
        minutes=minutes,
        summary=str(front.get("summary", "")).strip(),
        body_markdown=canonical_body(body),
        body_html=rendered.html,
        source_path=str(path.relative_to(relative_to)),
        extensions={key: front[key] for key in EXTENSION_KEYS if key in front},
        check=check,
    )


def _parse_check(path: Path, raw: Any, lines: dict[tuple, int]) -> CheckSpec:
    """Validate a `check:` section; every error names the file line of the offending item."""
    from django.utils.text import slugify

    def fail(where: tuple, message: str) -> CourseFolderError:
        # The nearest enclosing item that has a line; +1 because front matter starts on line 2.
        while where and where not in lines:
            where = where[:-1]
        return CourseFolderError(path, message, line=1 + lines.get(where, 1))

    def mapping(where: tuple, value: Any, *, what: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise fail(where, f"{what} must be a mapping")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise fail(
                (*where, unknown[0]),
                f"unknown key(s) in {what}: {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(allowed))})",
            )
        return value

    def text(where: tuple, value: Any, *, what: str) -> tuple[str, str]:
        if not isinstance(value, str) or not value.strip():
            raise fail(where, f"{what} must be non-empty text")
        try:
            return canonical_text(value), render_markdown(value).html
        except MarkdownError as exc:
            raise fail(where, f"{what}: {exc.message}") from None

    section = mapping(("check",), raw, what="'check'", allowed=CHECK_KEYS)
    pass_mark = section.get("pass_mark", 100)
    if isinstance(pass_mark, bool) or not isinstance(pass_mark, int) or not 1 <= pass_mark <= 100:
        raise fail(("check", "pass_mark"), "'pass_mark' must be a whole percentage from 1 to 100")
    raw_questions = section.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise fail(("check", "questions"), "'questions' must be a non-empty list")
    if len(raw_questions) > MAX_QUESTIONS:
        raise fail(("check", "questions"), f"a check has at most {MAX_QUESTIONS} questions")
    questions: list[QuestionSpec] = []
    keys: set[str] = set()
    for number, raw_question in enumerate(raw_questions, start=1):
        at = ("check", "questions", number - 1)
        what = f"question {number}"
        question = mapping(at, raw_question, what=what, allowed=QUESTION_KEYS)
        key = str(question.get("id", f"q{number}"))
        if slugify(key) != key:
            raise fail((*at, "id"), f"{what}: id '{key}' is not a valid slug")
        if key in keys:
            raise fail((*at, "id"), f"{what}: duplicate question id '{key}'")
        keys.add(key)
        if "prompt" not in question:
            raise fail(at, f"{what} has no 'prompt'")
        prompt_md, prompt_html = text((*at, "prompt"), question["prompt"], what=f"{what} prompt")
        raw_options = question.get("options")
        if not isinstance(raw_options, list) or not 2 <= len(raw_options) <= MAX_OPTIONS:
            raise fail((*at, "options"), f"{what} needs a list of 2 to {MAX_OPTIONS} 'options'")
        options: list[OptionSpec] = []
        for letter, raw_option in zip("abcdefgh", raw_options, strict=False):
            where = (*at, "options", len(options))
            label = f"{what}, option {letter}"
            option = mapping(where, raw_option, what=label, allowed=OPTION_KEYS)
            for needed in ("text", "explanation"):
                if needed not in option:
                    raise fail(where, f"{label} has no '{needed}'")
            correct = option.get("correct", False)
            if not isinstance(correct, bool):
                raise fail((*where, "correct"), f"{label}: 'correct' must be true or false")
            text_md, text_html = text((*where, "text"), option["text"], what=f"{label} text")
            if any(o.text_markdown == text_md for o in options):
                raise fail((*where, "text"), f"{label} repeats an earlier option's text")
            expl_md, expl_html = text(
                (*where, "explanation"), option["explanation"], what=f"{label} explanation"
            )
            options.append(OptionSpec(text_md, unwrap_paragraph(text_html), correct, expl_md,
                                      expl_html))  # fmt: skip
        if not any(o.correct for o in options):
            raise fail((*at, "options"), f"{what} has no correct option")
        if all(o.correct for o in options):
            raise fail((*at, "options"), f"{what}: every option is correct; add a wrong one")
        questions.append(QuestionSpec(key, prompt_md, prompt_html, options))
    return CheckSpec(pass_mark=pass_mark, questions=questions)


def unwrap_paragraph(html: str) -> str:
    """An option is one line: drop the single <p> Markdown wraps it in, keep inline markup."""
    stripped = html.strip()
    if stripped.startswith("<p>") and stripped.endswith("</p>") and stripped.count("<p>") == 1:
        return stripped[3:-4]
    return stripped


def _node_lines(text: str) -> dict[tuple, int]:
    """Map each key path in a YAML document (("check", "questions", 0), ...) to its 1-based line."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, where: tuple) -> None:
        lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*where, key_node.value)
                lines[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*where, index))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _load_yaml(path: Path, text: str, *, line_offset: int) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 + line_offset if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CourseFolderError(path, f"invalid YAML: {problem}", line=line) from None
    if not isinstance(data, dict):
        raise CourseFolderError(
            path, "expected a YAML mapping of keys to values", line=1 + line_offset
        )
    return data


def _check_keys(path: Path, data: dict[str, Any], *, required: set[str], allowed: set[str]) -> None:
    missing = sorted(required - data.keys())
    if missing:
        raise CourseFolderError(path, f"missing required key(s): {', '.join(missing)}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CourseFolderError(
            path, f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _slug(path: Path, value: Any) -> str:
    from django.utils.text import slugify

    text = str(value)
    if not text or slugify(text) != text:
        raise CourseFolderError(
            path, f"'{text}' is not a valid slug (lowercase letters, digits, '-')"
        )
    return text


def _line_of_key(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return 1

"""Course-as-code: read a course folder into plain data, checking everything first.

A course folder looks like::

    fine-tuning-at-work/
        course.yaml                 # slug, title, summary, published, stages: [slug, title, summary]
        foundations/                # one folder per stage, named by the stage slug
            01-what-is-a-pretrained-model.md
            ...

Each module file starts with YAML front matter (slug, title, kind, required,
minutes, summary; apps above `courses` may add their own sections such as
`lab:`) followed by the Markdown body. Parsing never touches the database;
`courses.services.course_import` writes the result in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from courses.rendering import MarkdownError, render_markdown

MODULE_KINDS = {"theory", "lab", "case_study"}
MODULE_KEYS = {"slug", "title", "kind", "required", "minutes", "summary"}
# Sections owned by apps that build on courses (labs, knowledge checks); kept as-is.
EXTENSION_KEYS = {"lab", "check"}
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
        body_markdown=body.strip("\n") + "\n",
        body_html=rendered.html,
        source_path=str(path.relative_to(relative_to)),
        extensions={key: front[key] for key in EXTENSION_KEYS if key in front},
    )


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

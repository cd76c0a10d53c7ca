"""Course-as-code: read a course folder into plain data, checking everything first.

A course folder looks like::

    fine-tuning-at-work/
        course.yaml                 # slug, title, summary, published, stages: [slug, title, summary]
        foundations/                # one folder per stage, named by the stage slug
            01-what-is-a-pretrained-model.md
            ...
        datasets/                   # labs' part (labs.services.authoring)

Each module file starts with YAML front matter (`schema.ModuleFront`: slug, title,
kind, required, minutes, summary, an optional knowledge `check:`, and on a lab
module its `lab:` section, which labs reads) followed by the Markdown body.
Parsing never touches the database; `courses.services.course_import_spec` writes
the result, inside the whole folder's transaction
(`labs.services.authoring.course_folder_import`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from courses.authoring.schema import CHECK_KINDS, CheckSection, CourseMeta, ModuleFront
from courses.authoring.source import CourseFolderError, YamlSource, read_text, refuse_nul
from courses.rendering import MarkdownError, render_markdown

# A module's translation sits beside it as `<module>.<language tag>.md` (e.g. `.zh-hans.md`);
# the translations have an importer of their own, so a course import leaves them alone.
TRANSLATION_FILE = re.compile(r"[^.]+\.[a-z]{2,3}(-[a-z0-9]{2,8})*\.md")


@dataclass
class OptionSpec:
    text_markdown: str
    text_html: str
    correct: bool
    explanation_markdown: str
    explanation_html: str


@dataclass
class NumericSpec:
    value: float
    tolerance: float
    explanation_markdown: str
    explanation_html: str


@dataclass
class QuestionSpec:
    key: str
    prompt_markdown: str
    prompt_html: str
    options: list[OptionSpec]
    numeric: NumericSpec | None = None

    @property
    def fingerprint(self) -> str:
        if self.numeric is not None:
            return numeric_fingerprint(
                self.prompt_markdown, self.numeric.value, self.numeric.tolerance
            )
        return question_fingerprint(
            self.prompt_markdown, [(o.text_markdown, o.correct) for o in self.options]
        )


@dataclass
class CheckSpec:
    pass_mark: int
    questions: list[QuestionSpec]
    max_attempts: int | None = None
    cooldown_minutes: int = 0
    draw_count: int | None = None


def canonical_body(text: str) -> str:
    """A module body as the importer stores it; the admin stores the same, so an exported
    course imports back unchanged (browsers post text areas with CRLF line ends)."""
    return text.replace("\r\n", "\n").strip("\n") + "\n"


def canonical_text(text: str) -> str:
    """A question's prompt, option or explanation as stored (see canonical_body)."""
    return text.replace("\r\n", "\n").strip() + "\n"


def numeric_fingerprint(prompt: str, value: float, tolerance: float) -> str:
    """What a learner answers in a numeric question: the prompt, the value and its tolerance."""
    return question_fingerprint(prompt, [(f"= {value!r} ± {tolerance!r}", True)])


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
    check: CheckSpec | None = None
    # The `lab:` section as written, with its lines, for labs to read with its own schema.
    lab: YamlSource | None = field(default=None, compare=False)
    # Where the slug was written, for the duplicate-slug error raised across files.
    slug_line: int | None = field(default=None, compare=False, repr=False)


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
    source = YamlSource.load(meta_path)
    meta = source.validate(CourseMeta)
    course = CourseSpec(
        slug=meta.slug,
        title=meta.title,
        summary=meta.summary,
        published=meta.published,
        root=root,
    )
    seen_modules: dict[str, Path] = {}
    for number, entry in enumerate(meta.stages):
        if any(stage.slug == entry.slug for stage in course.stages):
            raise source.error(("stages", number, "slug"), f"duplicate stage slug '{entry.slug}'")
        stage = StageSpec(slug=entry.slug, title=entry.title, summary=entry.summary)
        stage_dir = root / stage.slug
        if not stage_dir.is_dir():
            raise CourseFolderError(stage_dir, f"folder for stage '{stage.slug}' is missing")
        for path in sorted(stage_dir.glob("*.md")):
            if TRANSLATION_FILE.fullmatch(path.name):
                continue  # `<module>.<language>.md`: a translation of a module, not a module
            module = parse_module_file(path, relative_to=root)
            if module.slug in seen_modules:
                raise CourseFolderError(
                    path,
                    f"duplicate module slug '{module.slug}' (also used in {seen_modules[module.slug]})",
                    line=module.slug_line,
                )
            seen_modules[module.slug] = path.relative_to(root)
            stage.modules.append(module)
        course.stages.append(stage)
    return course


def parse_module_file(path: Path, *, relative_to: Path) -> ModuleSpec:
    text = read_text(path)
    refuse_nul(path, text)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise CourseFolderError(
            path, "missing front matter: the file must start with '---'", line=1
        )
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise CourseFolderError(path, "front matter is never closed with '---'", line=1) from None
    # Front matter starts on the file's second line.
    source = YamlSource.load(path, text="\n".join(lines[1:end]), line_offset=1)
    front = source.validate(ModuleFront)
    if front.check is not None and front.kind not in CHECK_KINDS:
        raise source.error(
            ("check",), "a knowledge 'check:' is only allowed on theory and case_study modules"
        )
    if front.lab is not None and front.kind != "lab":
        raise source.error(("lab",), "a 'lab:' section is only allowed on a module of kind lab")
    # The body keeps its leading blank lines so Markdown line N is file line end + 1 + N.
    body = "\n".join(lines[end + 1 :]) + "\n"
    try:
        rendered = render_markdown(body)
    except MarkdownError as exc:
        raise CourseFolderError(path, exc.message, line=end + 1 + (exc.line or 1)) from None
    return ModuleSpec(
        slug=front.slug,
        title=front.title,
        kind=front.kind,
        required=front.required,
        minutes=front.minutes,
        summary=front.summary,
        body_markdown=canonical_body(body),
        body_html=rendered.html,
        source_path=str(path.relative_to(relative_to)),
        check=_check_spec(front.check, source.child("check")) if front.check else None,
        lab=source.child("lab") if front.lab is not None else None,
        slug_line=source.line_of(("slug",)),
    )


def _check_spec(check: CheckSection, source: YamlSource) -> CheckSpec:
    """The rules across a check's items, and its Markdown rendered once; errors name the line."""
    questions: list[QuestionSpec] = []
    for number, question in enumerate(check.questions, start=1):
        at: tuple[str | int, ...] = ("questions", number - 1)
        what = f"question {number}"
        key = question.id or f"q{number}"
        if any(q.key == key for q in questions):
            raise source.error((*at, "id"), f"{what}: duplicate question id '{key}'")
        prompt_md, prompt_html = _markdown(
            source, (*at, "prompt"), question.prompt, what=f"{what} prompt"
        )
        if question.answer is not None:
            assert question.explanation is not None  # the schema requires it
            expl_md, expl_html = _markdown(
                source, (*at, "explanation"), question.explanation, what=f"{what} explanation"
            )
            numeric = NumericSpec(
                question.answer.value, question.answer.tolerance, expl_md, expl_html
            )
            questions.append(QuestionSpec(key, prompt_md, prompt_html, [], numeric))
            continue
        options: list[OptionSpec] = []
        for index, option in enumerate(question.options or []):
            where = (*at, "options", index)
            label = f"{what}, option {'abcdefgh'[index]}"
            text_md, text_html = _markdown(
                source, (*where, "text"), option.text, what=f"{label} text"
            )
            if any(o.text_markdown == text_md for o in options):
                raise source.error((*where, "text"), f"{label} repeats an earlier option's text")
            expl_md, expl_html = _markdown(
                source, (*where, "explanation"), option.explanation, what=f"{label} explanation"
            )
            options.append(
                OptionSpec(text_md, unwrap_paragraph(text_html), option.correct, expl_md, expl_html)
            )
        if not any(o.correct for o in options):
            raise source.error((*at, "options"), f"{what} has no correct option")
        if all(o.correct for o in options):
            raise source.error(
                (*at, "options"), f"{what}: every option is correct; add a wrong one"
            )
        questions.append(QuestionSpec(key, prompt_md, prompt_html, options))
    if check.draw is not None and check.draw > len(questions):
        raise source.error(
            ("draw",),
            f"'check.draw' is {check.draw}, but the check has only {len(questions)} question(s)",
        )
    return CheckSpec(
        pass_mark=check.pass_mark,
        questions=questions,
        max_attempts=check.max_attempts,
        draw_count=check.draw,
        cooldown_minutes=check.cooldown_minutes,
    )


def _markdown(
    source: YamlSource, where: tuple[str | int, ...], text: str, *, what: str
) -> tuple[str, str]:
    try:
        return canonical_text(text), render_markdown(text).html
    except MarkdownError as exc:
        raise source.error(where, f"{what}: {exc.message}") from None


def unwrap_paragraph(html: str) -> str:
    """An option is one line: drop the single <p> Markdown wraps it in, keep inline markup."""
    stripped = html.strip()
    if stripped.startswith("<p>") and stripped.endswith("</p>") and stripped.count("<p>") == 1:
        return stripped[3:-4]
    return stripped

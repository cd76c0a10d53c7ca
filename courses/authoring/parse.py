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
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from courses.authoring.schema import (
    CHECK_KINDS,
    NON_TEXT_KEYS,
    CheckSection,
    CheckText,
    CourseMeta,
    CourseTranslationMeta,
    ModuleFront,
    ModuleTranslationFront,
)
from courses.authoring.source import CourseFolderError, Loc, YamlSource, read_text, refuse_nul
from courses.rendering import MarkdownError, render_markdown


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
    # Translations by language code ("zh-hans"), from the files beside this one.
    translations: dict[str, ModuleTranslationSpec] = field(default_factory=dict)
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
    translations: dict[str, CourseTranslationSpec] = field(default_factory=dict)
    # Translation files refused: each leaves its module (or the course) in English and
    # never stops the English from importing.
    translation_problems: list[CourseFolderError] = field(default_factory=list)

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
        module_paths = sorted(p for p in stage_dir.glob("*.md") if not translation_language(p))
        for path in module_paths:
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
        _read_module_translations(course, stage_dir, stage.modules)
    _read_course_translations(course)
    return course


def split_front_matter(path: Path) -> tuple[YamlSource, str, int]:
    """A Markdown file's front matter, its body, and the line number of the closing '---'."""
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
    # The body keeps its leading blank lines so Markdown line N is file line end + 1 + N.
    return source, "\n".join(lines[end + 1 :]) + "\n", end


def _render_body(path: Path, body: str, end: int) -> str:
    try:
        return render_markdown(body).html
    except MarkdownError as exc:
        raise CourseFolderError(path, exc.message, line=end + 1 + (exc.line or 1)) from None


def parse_module_file(path: Path, *, relative_to: Path) -> ModuleSpec:
    source, body, end = split_front_matter(path)
    front = source.validate(ModuleFront)
    if front.check is not None and front.kind not in CHECK_KINDS:
        raise source.error(
            ("check",), "a knowledge 'check:' is only allowed on theory and case_study modules"
        )
    if front.lab is not None and front.kind != "lab":
        raise source.error(("lab",), "a 'lab:' section is only allowed on a module of kind lab")
    body_html = _render_body(path, body, end)
    return ModuleSpec(
        slug=front.slug,
        title=front.title,
        kind=front.kind,
        required=front.required,
        minutes=front.minutes,
        summary=front.summary,
        body_markdown=canonical_body(body),
        body_html=body_html,
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


# --------------------------------------------------------------------------
# Translations: `NN-name.<language>.md` beside `NN-name.md`, `course.<language>.yaml`
# beside course.yaml (schema.ModuleTranslationFront, schema.CourseTranslationMeta). Each
# is checked against its English file; one that does not match is refused on its own
# (CourseSpec.translation_problems), and its module is imported in English.


@dataclass
class OptionTextSpec:
    text_markdown: str
    text_html: str
    explanation_markdown: str
    explanation_html: str


@dataclass
class QuestionTextSpec:
    key: str
    prompt_markdown: str
    prompt_html: str
    options: list[OptionTextSpec]
    # A numeric question's explanation ('' for a multiple-choice one).
    explanation_markdown: str = ""
    explanation_html: str = ""


@dataclass
class ModuleTranslationSpec:
    language: str
    title: str
    summary: str
    body_markdown: str
    body_html: str
    source_path: str
    questions: list[QuestionTextSpec] = field(default_factory=list)


@dataclass
class CourseTranslationSpec:
    language: str
    title: str
    summary: str
    # stage slug -> (title, summary)
    stages: dict[str, tuple[str, str]]
    source_path: str


def content_languages() -> frozenset[str]:
    """The languages a course may be translated into: the site's languages (settings.LANGUAGES)
    other than English, which is the course files themselves."""
    return frozenset(
        code.lower() for code, _ in settings.LANGUAGES if code.lower().split("-")[0] != "en"
    )


def translation_language(path: Path) -> str:
    """The language code of a translation file's name ('01-a.zh-hans.md' -> 'zh-hans'), or ''."""
    stem = path.name.removesuffix(path.suffix)
    return stem.rpartition(".")[2].lower() if "." in stem else ""


def _read_module_translations(
    course: CourseSpec, stage_dir: Path, modules: list[ModuleSpec]
) -> None:
    english = {Path(m.source_path).name: m for m in modules}
    for path in sorted(stage_dir.glob("*.md")):
        language = translation_language(path)
        if not language:
            continue
        english_name = f"{path.name[: -len(f'.{language}.md')]}.md"
        try:
            module = english.get(english_name)
            if module is None:
                raise CourseFolderError(
                    path, f"a translation with no English module beside it ({english_name})"
                )
            translation = parse_module_translation(path, english=module, relative_to=course.root)
        except CourseFolderError as exc:
            course.translation_problems.append(exc)
            continue
        module.translations[translation.language] = translation


def _read_course_translations(course: CourseSpec) -> None:
    for path in sorted(course.root.glob("course.*.yaml")):
        try:
            translation = parse_course_translation(path, course=course)
        except CourseFolderError as exc:
            course.translation_problems.append(exc)
            continue
        course.translations[translation.language] = translation


def _check_language(source: YamlSource, path: Path, written: str) -> str:
    named = translation_language(path)
    if written.lower() != named:
        raise source.error(
            ("language",),
            f"'language' is '{written}', but the file name says '{named}'; they must agree",
        )
    if named not in content_languages():
        known = ", ".join(sorted(content_languages())) or "none"
        raise source.error(
            ("language",),
            f"'{named}' is not one of the site's languages (settings.LANGUAGES: {known})",
        )
    return named


def _refuse_non_text(source: YamlSource, data: object, where: Loc, english: str) -> None:
    """A key that decides grading or progress belongs to the English file only: named as such,
    which says more than pydantic's "unknown key"."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in NON_TEXT_KEYS:
                raise source.error(
                    (*where, key),
                    f"'{key}' is not translated: it comes from the English file ({english}); "
                    "a translation carries only text",
                )
            _refuse_non_text(source, value, (*where, key), english)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _refuse_non_text(source, item, (*where, index), english)


def parse_module_translation(
    path: Path, *, english: ModuleSpec, relative_to: Path
) -> ModuleTranslationSpec:
    """A module's translation, checked against its English module `english`."""
    source, body, end = split_front_matter(path)
    _refuse_non_text(source, source.data, (), english.source_path)
    front = source.validate(ModuleTranslationFront)
    language = _check_language(source, path, front.language)
    if front.slug != english.slug:
        raise source.error(
            ("slug",),
            f"unknown slug '{front.slug}': the English module beside it "
            f"({english.source_path}) has slug '{english.slug}'",
        )
    if english.check is None and front.check is not None:
        raise source.error(("check",), "the English module has no knowledge check to translate")
    if english.check is not None and front.check is None:
        raise source.error(
            ("slug",),
            f"the English module has a knowledge check of {len(english.check.questions)} "
            "question(s): translate it under 'check: questions:'",
        )
    questions = (
        _question_texts(source.child("check"), front.check, english.check)
        if english.check is not None and front.check is not None
        else []
    )
    return ModuleTranslationSpec(
        language=language,
        title=front.title,
        summary=front.summary,
        body_markdown=canonical_body(body),
        body_html=_render_body(path, body, end),
        source_path=str(path.relative_to(relative_to)),
        questions=questions,
    )


def _question_texts(
    source: YamlSource, check: CheckText, english: CheckSpec
) -> list[QuestionTextSpec]:
    if len(check.questions) != len(english.questions):
        raise source.error(
            ("questions",),
            f"the translation has {len(check.questions)} question(s), the English "
            f"{len(english.questions)}: translate each one, in the English order",
        )
    out: list[QuestionTextSpec] = []
    for number, (question, original) in enumerate(
        zip(check.questions, english.questions, strict=True), start=1
    ):
        at: Loc = ("questions", number - 1)
        what = f"question {number} ('{original.key}')"
        key = question.id or f"q{number}"
        if key != original.key:
            raise source.error(
                (*at, "id"),
                f"question {number} has id '{key}', but the English question {number} is "
                f"'{original.key}': same ids, same order",
            )
        prompt_md, prompt_html = _markdown(
            source, (*at, "prompt"), question.prompt, what=f"{what} prompt"
        )
        if original.numeric is not None:
            if question.options is not None or question.explanation is None:
                raise source.error(
                    at, f"{what} is a numeric question: translate its 'prompt' and 'explanation'"
                )
            expl_md, expl_html = _markdown(
                source, (*at, "explanation"), question.explanation, what=f"{what} explanation"
            )
            out.append(QuestionTextSpec(key, prompt_md, prompt_html, [], expl_md, expl_html))
            continue
        if question.explanation is not None:
            raise source.error(
                (*at, "explanation"),
                f"{what}: 'explanation' belongs on each option of a multiple-choice question",
            )
        options = question.options or []
        if len(options) != len(original.options):
            raise source.error(
                (*at, "options"),
                f"{what} has {len(options)} option(s), the English {len(original.options)}: "
                "translate each one, in the English order",
            )
        texts: list[OptionTextSpec] = []
        for index, option in enumerate(options):
            where = (*at, "options", index)
            label = f"{what}, option {'abcdefgh'[index]}"
            text_md, text_html = _markdown(
                source, (*where, "text"), option.text, what=f"{label} text"
            )
            expl_md, expl_html = _markdown(
                source, (*where, "explanation"), option.explanation, what=f"{label} explanation"
            )
            texts.append(OptionTextSpec(text_md, unwrap_paragraph(text_html), expl_md, expl_html))
        out.append(QuestionTextSpec(key, prompt_md, prompt_html, texts))
    return out


def parse_course_translation(path: Path, *, course: CourseSpec) -> CourseTranslationSpec:
    """course.<language>.yaml, checked against course.yaml: a title for every stage."""
    source = YamlSource.load(path)
    _refuse_non_text(source, source.data, (), "course.yaml")
    meta = source.validate(CourseTranslationMeta)
    language = _check_language(source, path, meta.language)
    english = [stage.slug for stage in course.stages]
    stages: dict[str, tuple[str, str]] = {}
    for number, entry in enumerate(meta.stages):
        if entry.slug not in english:
            raise source.error(
                ("stages", number, "slug"),
                f"unknown stage slug '{entry.slug}' (course.yaml's stages: {', '.join(english)})",
            )
        if entry.slug in stages:
            raise source.error(("stages", number, "slug"), f"duplicate stage slug '{entry.slug}'")
        stages[entry.slug] = (entry.title, entry.summary)
    missing = [slug for slug in english if slug not in stages]
    if missing:
        raise source.error(("stages",), f"no translation for stage(s): {', '.join(missing)}")
    return CourseTranslationSpec(
        language=language,
        title=meta.title,
        summary=meta.summary,
        stages=stages,
        source_path=str(path.relative_to(course.root)),
    )

"""Course-as-code, the other way: write a course's own part from the database to a folder.

The folder has the layout `courses.authoring.parse` reads, so an instructor who
edited a course in the admin can commit it to git, and importing the export changes
nothing (a test holds the round trip to that). The whole folder, with its datasets
and lab code, is written by `labs.exporting.course_folder_export`, which hands the
`lab:` sections to `course_export`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from courses.models import CheckQuestion, Course, Module, ModuleTranslation, StageTranslation


def dump_yaml(data: Any) -> str:
    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value.strip("\n") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    # Multi-line text as YAML blocks, so exported files read like hand-written ones.
    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


def module_file_names(modules: list[Module]) -> list[str]:
    """File names for one stage's modules, in order: the names they were imported from
    while those still sort in the stage's order (an import of the export then changes
    nothing), otherwise numbered afresh (modules reordered or added in the admin)."""
    kept = [PurePosixPath(m.source_path).name if m.source_path else "" for m in modules]
    if all(kept) and kept == sorted(set(kept)):
        return kept
    return [f"{i:02d}-{m.slug}.md" for i, m in enumerate(modules, start=1)]


def _numeric_entry(question: CheckQuestion) -> dict[str, Any]:
    return {
        "id": question.key,
        "prompt": question.prompt_markdown.strip(),
        "answer": {"value": question.numeric_value, "tolerance": question.numeric_tolerance},
        "explanation": question.explanation_markdown.strip(),
    }


def _check_section(module: Module) -> dict[str, Any] | None:
    questions = [q for q in module.questions.all() if q.retired_at is None]
    if not questions:
        return None
    return {
        "pass_mark": module.check_pass_mark,
        # Only what differs from the defaults, so an export of an old check reads as before.
        **({"draw": module.check_draw_count} if module.check_draw_count else {}),
        **({"max_attempts": module.check_max_attempts} if module.check_max_attempts else {}),
        **(
            {"cooldown_minutes": module.check_cooldown_minutes}
            if module.check_cooldown_minutes
            else {}
        ),
        "questions": [
            _numeric_entry(question)
            if question.numeric_value is not None
            else {
                "id": question.key,
                "prompt": question.prompt_markdown.strip(),
                "options": [
                    {
                        "text": option.text_markdown.strip(),
                        "correct": option.is_correct,
                        "explanation": option.explanation_markdown.strip(),
                    }
                    for option in question.options.order_by("position")
                ],
            }
            for question in sorted(questions, key=lambda q: q.position)
        ],
    }


def _translation_front(module: Module, translation: ModuleTranslation) -> dict[str, Any]:
    """A module translation's front matter: its texts only; where the admin left a question
    or option untranslated, its English, so the file is whole (and the page reads the same)."""
    front: dict[str, Any] = {
        "slug": module.slug,
        "language": translation.language,
        "title": translation.title,
        "summary": translation.summary,
    }
    language = translation.language
    questions = sorted(
        (q for q in module.questions.all() if q.retired_at is None), key=lambda q: q.position
    )
    entries = []
    for question in questions:
        text = next((t for t in question.translations.all() if t.language == language), None)
        entry: dict[str, Any] = {
            "id": question.key,
            "prompt": (text or question).prompt_markdown.strip(),
        }
        if question.numeric_value is not None:
            explained = text if text and text.explanation_markdown else question
            entry["explanation"] = explained.explanation_markdown.strip()
        else:
            entry["options"] = []
            for option in sorted(question.options.all(), key=lambda o: o.position):
                shown = next((t for t in option.translations.all() if t.language == language), None)
                entry["options"].append(
                    {
                        "text": (shown or option).text_markdown.strip(),
                        "explanation": (shown or option).explanation_markdown.strip(),
                    }
                )
        entries.append(entry)
    if entries:
        front["check"] = {"questions": entries}
    return front


def course_export(
    *, course: Course, dest: Path | str, lab_sections: Mapping[int, dict[str, Any]]
) -> list[Path]:
    """Write `course` as a course folder at `dest` (created; must be empty) and list the files.

    `lab_sections` maps a lab module's id to its `lab:` front-matter section."""
    root = Path(dest)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: export into a new folder")
    root.mkdir(parents=True, exist_ok=True)
    stages = list(course.stages.order_by("position"))
    (root / "course.yaml").write_text(
        dump_yaml(
            {
                "slug": course.slug,
                "title": course.title,
                "summary": course.summary,
                "published": course.is_published,
                "stages": [
                    {"slug": s.slug, "title": s.title, "summary": s.summary} for s in stages
                ],
            }
        ),
        encoding="utf-8",
    )
    for translation in course.translations.all():
        stage_texts = {
            t.stage_id: t
            for t in StageTranslation.objects.filter(
                stage__course=course, language=translation.language
            )
        }
        (root / f"course.{translation.language}.yaml").write_text(
            dump_yaml(
                {
                    "language": translation.language,
                    "title": translation.title,
                    "summary": translation.summary,
                    # A stage the admin left untranslated keeps its English, as on the page.
                    "stages": [
                        {
                            "slug": s.slug,
                            "title": stage_texts[s.pk].title if s.pk in stage_texts else s.title,
                            "summary": stage_texts[s.pk].summary
                            if s.pk in stage_texts
                            else s.summary,
                        }
                        for s in stages
                    ],
                }
            ),
            encoding="utf-8",
        )
    modules = list(
        course.modules.select_related("stage")
        .prefetch_related(
            "questions__options__translations", "questions__translations", "translations"
        )
        .order_by("stage__position", "position")
    )
    fronts: dict[int, dict[str, Any]] = {}
    for module in modules:
        front: dict[str, Any] = {
            "slug": module.slug,
            "title": module.title,
            "kind": module.kind,
            "required": module.required,
            "minutes": module.estimated_minutes,
            "summary": module.summary,
        }
        if check := _check_section(module):
            front["check"] = check
        if module.pk in lab_sections:
            front["lab"] = lab_sections[module.pk]
        fronts[module.pk] = front
    for stage in stages:  # an empty stage still needs its folder
        (root / stage.slug).mkdir(exist_ok=True)
    for stage in stages:
        in_stage = [m for m in modules if m.stage_id == stage.pk]
        for module, name in zip(in_stage, module_file_names(in_stage), strict=True):
            (root / stage.slug / name).write_text(
                f"---\n{dump_yaml(fronts[module.pk])}---\n{module.body_markdown}", encoding="utf-8"
            )
            for text in module.translations.all():
                (root / stage.slug / f"{name.removesuffix('.md')}.{text.language}.md").write_text(
                    f"---\n{dump_yaml(_translation_front(module, text))}---\n{text.body_markdown}",
                    encoding="utf-8",
                )
    return sorted(path for path in root.rglob("*") if path.is_file())

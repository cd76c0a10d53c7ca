"""Course export: the database written back as a course folder that imports unchanged."""

from __future__ import annotations

import dataclasses

import pytest
from django.core.management import CommandError, call_command

from courses.authoring.parse import parse_course_folder
from courses.services import question_render
from labs.authoring_schema import LabSection
from labs.exporting import course_folder_export
from labs.models import Example, Lab
from labs.services.authoring import course_folder_import
from tests.conftest import SHIPPED_COURSE


def comparable(spec) -> list[dict]:
    """Everything a course folder says, except where each file happens to sit."""
    out = []
    for stage in spec.stages:
        for module in stage.modules:
            fields = dataclasses.asdict(module)
            fields.pop("source_path")
            fields.pop("slug_line")
            fields.pop("lab")  # lab sections name their files; compared in the database
            out.append({"stage": (stage.slug, stage.title, stage.summary), **fields})
    return out


def snapshot(course) -> dict:
    labs = {
        lab.module.slug: {
            f.name: getattr(lab, f.attname)
            for f in Lab._meta.concrete_fields
            if f.name not in {"id", "module", "validated_at"}
        }
        for lab in Lab.objects.filter(module__course=course).select_related("module")
    }
    examples = list(
        Example.objects.filter(dataset__labs__module__course=course)
        .order_by("dataset__slug", "split", "position")
        .values_list("dataset__slug", "split", "text", "label")
        .distinct()
    )
    return {"labs": labs, "examples": examples}


def test_the_shipped_course_exports_to_a_folder_that_reads_back_the_same(shipped_course, tmp_path):
    before = snapshot(shipped_course)
    course_folder_export(course=shipped_course, dest=tmp_path / "export")

    assert comparable(parse_course_folder(tmp_path / "export")) == comparable(
        parse_course_folder(SHIPPED_COURSE)
    )
    report = course_folder_import(path=tmp_path / "export")
    assert (report.created, report.updated, report.not_in_folder) == ([], [], [])
    assert snapshot(shipped_course) == before
    assert before["labs"] and before["examples"]


def test_edits_made_in_the_admin_are_in_the_export(shipped_course, tmp_path):
    module = shipped_course.modules.get(slug="tokenisation")
    module.title = "Tokens: how text reaches the model"
    module.save()
    question = module.questions.order_by("position").first()
    option = question.options.order_by("position").first()
    option.explanation_markdown = (
        "A rewritten explanation, with `code`.\r\n"  # as a browser posts it
    )
    option.save()
    question_render(question=question)  # what the admin does after saving a question
    lab = Lab.objects.get(module__slug="lab-first-fine-tune")
    lab.pass_mark = 45
    lab.save()

    course_folder_export(course=shipped_course, dest=tmp_path / "export")

    exported = {m.slug: m for m in parse_course_folder(tmp_path / "export").modules}
    assert exported["tokenisation"].title == "Tokens: how text reaches the model"
    first = exported["tokenisation"].check.questions[0].options[0]
    assert first.explanation_markdown == "A rewritten explanation, with `code`.\n"
    section = exported["lab-first-fine-tune"].lab
    assert section is not None and section.validate(LabSection).grading.pass_mark == 45
    report = course_folder_import(path=tmp_path / "export")
    assert (report.created, report.updated) == ([], [])


def test_a_checks_pool_and_retry_rules_round_trip_through_the_export(shipped_course, tmp_path):
    module = shipped_course.modules.get(slug="tokenisation")
    module.check_max_attempts, module.check_cooldown_minutes = 4, 20
    module.check_draw_count = 2
    module.save()
    course_folder_export(course=shipped_course, dest=tmp_path / "export")
    exported = {m.slug: m for m in parse_course_folder(tmp_path / "export").modules}
    check = exported["tokenisation"].check
    assert check is not None and (check.max_attempts, check.cooldown_minutes) == (4, 20)
    assert check.draw_count == 2
    untouched = exported["optimisers-and-learning-rate"].check
    assert untouched is not None and (untouched.max_attempts, untouched.cooldown_minutes) == (
        None,
        0,
    )
    report = course_folder_import(path=tmp_path / "export")
    assert (report.created, report.updated) == ([], [])
    module.refresh_from_db()
    assert (module.check_max_attempts, module.check_cooldown_minutes) == (4, 20)


def test_exporting_into_a_folder_that_holds_files_is_refused(shipped_course, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(CommandError, match="is not empty"):
        call_command("export_course", shipped_course.slug, str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_exporting_an_unknown_course_names_it(db, tmp_path):
    with pytest.raises(CommandError, match="No course with slug 'nope'"):
        call_command("export_course", "nope", str(tmp_path / "out"))

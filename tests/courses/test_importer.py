from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from courses.authoring.parse import parse_course_folder
from courses.authoring.source import CourseFolderError
from courses.models import Course, Module, Stage
from labs.services.authoring import course_folder_import, course_folder_import_zip
from tests.conftest import SHIPPED_COURSE

COURSE_YAML = """\
slug: tiny
title: Tiny course
summary: For tests.
stages:
  - slug: one
    title: One
  - slug: two
    title: Two
"""


def module_file(slug: str, *, kind: str = "theory", body: str = "Hello $x$.") -> str:
    return f"---\nslug: {slug}\ntitle: Module {slug}\nkind: {kind}\nminutes: 5\n---\n{body}\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "one").mkdir(parents=True)
    (root / "two").mkdir()
    (root / "course.yaml").write_text(COURSE_YAML)
    (root / "one" / "01-a.md").write_text(module_file("a"))
    (root / "one" / "02-b.md").write_text(module_file("b"))
    (root / "two" / "01-c.md").write_text(module_file("c", kind="case_study"))
    return root


def test_shipped_course_imports_with_every_stage_and_module(db):
    report = course_folder_import(path=SHIPPED_COURSE)
    course = report.course
    assert course.title == "Fine-tuning language models at work"
    assert list(course.stages.values_list("slug", flat=True)) == [
        "foundations",
        "doing-it-well",
        "at-work",
    ]
    theory = set(course.modules.filter(kind="theory").values_list("slug", flat=True))
    assert {
        "what-is-a-pretrained-model",
        "evaluating-a-classifier",
        "responsible-and-compliant-use",
    } <= theory
    assert all(m.body_html for m in course.modules.all())


def test_import_is_idempotent_and_reports_changes(db, folder):
    first = course_folder_import(path=folder)
    assert len(first.created) == 1 + 2 + 3
    second = course_folder_import(path=folder)
    assert not second.changed
    assert (
        Module.objects.count() == 3 and Stage.objects.count() == 2 and Course.objects.count() == 1
    )

    (folder / "one" / "02-b.md").write_text(module_file("b", body="Changed body."))
    third = course_folder_import(path=folder)
    assert third.updated == ["module b"]
    assert "Changed body." in Module.objects.get(slug="b").body_html


def test_module_order_follows_file_names(db, folder):
    (folder / "one" / "00-z.md").write_text(module_file("z"))
    course = course_folder_import(path=folder).course
    assert list(course.modules.filter(stage__slug="one").values_list("slug", flat=True)) == [
        "z",
        "a",
        "b",
    ]


def test_a_translation_beside_a_module_is_not_imported_as_a_second_module(db, folder):
    # `<module>.<language>.md` has an importer of its own; here it would clash on the slug.
    (folder / "one" / "01-a.zh-hans.md").write_text(
        "---\nslug: a\nlanguage: zh-hans\ntitle: 甲\n---\n正文\n", encoding="utf-8"
    )
    course = course_folder_import(path=folder).course
    assert list(course.modules.filter(stage__slug="one").values_list("slug", flat=True)) == [
        "a",
        "b",
    ]
    assert Module.objects.get(slug="a").title != "甲"


def test_a_module_removed_from_the_folder_is_kept_and_reported(db, folder):
    course_folder_import(path=folder)
    (folder / "one" / "02-b.md").unlink()
    report = course_folder_import(path=folder)
    assert report.not_in_folder == ["b"]
    assert Module.objects.filter(slug="b").exists()


@pytest.mark.parametrize(
    ("breakage", "file_suffix", "line", "message"),
    [
        (
            lambda f: (f / "one" / "02-b.md").write_text("No front matter\n"),
            "one/02-b.md",
            1,
            "missing front matter",
        ),
        (
            lambda f: (f / "two" / "02-dup.md").write_text(module_file("a")),
            "two/02-dup.md",
            2,
            "duplicate module slug 'a'",
        ),
        (
            lambda f: (f / "one" / "02-b.md").write_text(module_file("b", kind="quiz")),
            "one/02-b.md",
            4,
            "unknown module kind 'quiz'",
        ),
        (
            lambda f: (f / "one" / "02-b.md").write_text(
                module_file("b", body="Line one\n\n$\\frac{1}{2$")
            ),
            "one/02-b.md",
            9,
            "Unbalanced braces",
        ),
        (
            lambda f: (f / "one" / "02-b.md").write_text(
                "---\nslug: b\ntitle: [unclosed\nkind: theory\n---\nx\n"
            ),
            "one/02-b.md",
            None,
            "invalid YAML",
        ),
        (
            lambda f: (f / "one" / "02-b.md").write_text(
                "---\nslug: b\ntitle: B\nkind: theory\ncolour: red\n---\nx\n"
            ),
            "one/02-b.md",
            5,
            "unknown key(s): colour",
        ),
    ],
    ids=[
        "missing-front-matter",
        "duplicate-slug",
        "unknown-kind",
        "broken-math",
        "bad-yaml",
        "unknown-key",
    ],
)
def test_malformed_folder_fails_naming_file_and_line_and_changes_nothing(
    db, folder, breakage, file_suffix, line, message
):
    course_folder_import(path=folder)
    (folder / "one" / "01-a.md").write_text(module_file("a", body="Edited before the broken file."))
    breakage(folder)
    with pytest.raises(CourseFolderError) as info:
        course_folder_import(path=folder)
    error = info.value
    assert error.path.endswith(file_suffix)
    assert message in error.message
    if line is not None:
        assert error.line == line
        assert f"{file_suffix}:{line}:" in str(error)
    # Nothing from the failed import landed, not even the valid edit before it.
    assert "Edited" not in Module.objects.get(slug="a").body_html


def test_an_unknown_key_in_a_stage_entry_names_course_yaml_and_its_line(db, folder):
    (folder / "course.yaml").write_text(COURSE_YAML.replace("    title: Two\n", "    titel: Two\n"))
    with pytest.raises(CourseFolderError) as info:
        parse_course_folder(folder)
    assert info.value.path.endswith("course.yaml") and info.value.line == 8
    assert "unknown key(s) in stage 2: titel (allowed: slug, summary, title)" in info.value.message


def test_a_lab_whose_dataset_is_missing_fails_after_the_course_part_and_changes_nothing(db, folder):
    (folder / "two" / "labs").mkdir()
    (folder / "two" / "labs" / "starter.py").write_text("HYPERPARAMETERS = {}\n")
    (folder / "two" / "labs" / "solution.py").write_text("HYPERPARAMETERS = {}\n")
    (folder / "two" / "02-lab.md").write_text(
        "---\nslug: lab\ntitle: Lab\nkind: lab\nlab:\n  dataset: not-shipped\n"
        "  starter: labs/starter.py\n  solution: labs/solution.py\n"
        "  grading: {baseline: 0.3, target: 0.9}\n---\nBody.\n"
    )
    with pytest.raises(
        CourseFolderError, match="lab dataset 'not-shipped' is not in datasets/"
    ) as info:
        course_folder_import(path=folder)
    assert info.value.path.endswith("two/02-lab.md") and info.value.line == 6
    # The course, stages and modules were written first, in the same transaction: rolled back.
    assert not Course.objects.exists() and not Module.objects.exists()


def test_an_unknown_key_in_dataset_yaml_names_the_file_and_its_line(db, folder):
    data = folder / "datasets" / "pets"
    data.mkdir(parents=True)
    (data / "dataset.yaml").write_text("slug: pets\ntitle: Pets\nlicence: CC0\n")
    with pytest.raises(CourseFolderError) as info:
        course_folder_import(path=folder)
    assert info.value.path.endswith("pets/dataset.yaml") and info.value.line == 3
    assert "unknown key(s): licence" in info.value.message
    assert not Course.objects.exists()


def test_duplicate_stage_slug_is_refused(db, folder):
    (folder / "course.yaml").write_text(COURSE_YAML + "  - slug: one\n    title: Again\n")
    with pytest.raises(CourseFolderError, match="duplicate stage slug 'one'"):
        parse_course_folder(folder)


def _zip(folder: Path, extra: dict[str, bytes] | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.rglob("*"):
            if path.is_file():
                archive.write(path, f"tiny/{path.relative_to(folder)}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_zipped_course_folder_imports(db, folder):
    report = course_folder_import_zip(upload=_zip(folder))
    assert report.course.slug == "tiny"
    assert report.course.modules.count() == 3


def test_zip_with_path_traversal_is_refused(db, folder):
    with pytest.raises(CourseFolderError, match="unsafe path"):
        course_folder_import_zip(upload=_zip(folder, {"../evil.md": b"x"}))
    assert not Course.objects.exists()


def test_not_a_zip_is_refused(db):
    with pytest.raises(CourseFolderError, match="not a zip file"):
        course_folder_import_zip(upload=io.BytesIO(b"plain text"), name="course.txt")


def test_import_course_command_reports_and_fails_cleanly(db, folder, tmp_path):
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("import_course", str(folder), stdout=out)
    assert "6 created" in out.getvalue()
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "one" / "01-a.md").write_text("oops")
    with pytest.raises(CommandError, match=r"nothing was changed.*01-a.md:1"):
        call_command("import_course", str(broken))

"""Finding 7: bad course input that ended in a 500 instead of a `file:line` message."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.db import models

from courses.authoring import schema
from courses.authoring.source import CourseFolderError
from courses.models import Course, Module, Stage
from labs.models import Dataset, Example
from labs.services.authoring import course_folder_import, course_folder_import_zip
from labs.training import data as training_data
from tests.security.authoring_support import write_course
from tests.security.bounded import run_bounded

pytestmark = pytest.mark.django_db


def refusal(root: Path) -> CourseFolderError:
    with pytest.raises(CourseFolderError) as error:
        course_folder_import(path=root)
    assert not Course.objects.exists() and not Dataset.objects.exists()
    return error.value


@pytest.mark.parametrize(
    ("yaml_text", "line", "message"),
    [
        ("slug: data\ntitle: [unclosed\nlicense: CC0\n", 3, "invalid YAML"),
        ("slug: data\ntitle: !!binary aGVsbG8=\nlicense: CC0\n", 2, "the YAML tag"),
        ("slug: data\ntitle: !!python/object:os.system x\nlicense: CC0\n", 2, "invalid YAML"),
        ("slug: data\ntitle: 2024-01-01\nlicense: CC0\n", 2, "the YAML tag"),
        ("slug: Bad Slug!\ntitle: T\nlicense: CC0\n", 1, "is not a valid slug"),
    ],
)
def test_finding_07_bad_yaml_or_a_tag_in_dataset_yaml_names_file_and_line(
    tmp_path, yaml_text, line, message
):
    root = write_course(tmp_path / "a", dataset="data")
    (root / "datasets/data/dataset.yaml").write_text(yaml_text)
    error = refusal(root)
    assert error.path.endswith("datasets/data/dataset.yaml")
    assert error.line == line and message in error.message


def test_finding_07_a_non_utf8_source_md_names_its_line(tmp_path):
    root = write_course(tmp_path / "a")
    (root / "datasets/shared-data/SOURCE.md").write_bytes(b"# Source\n\nCaf\xe9 data\n")
    error = refusal(root)
    assert error.path.endswith("SOURCE.md") and error.line == 3
    assert "not UTF-8 text (byte 0xe9)" in error.message


def test_finding_07_a_zip_with_a_forged_crc_is_refused_with_a_message(tmp_path):
    root = write_course(tmp_path / "a")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, f"a/{path.relative_to(root)}")
    data = bytearray(buffer.getvalue())
    # The CRC of the first entry, in its local header (offset 14) and the central directory.
    first_crc = bytes(data[14:18])
    forged = bytes(b ^ 0xFF for b in first_crc)
    data[14:18] = forged
    central = data.find(b"PK\x01\x02")
    data[central + 16 : central + 20] = forged
    with pytest.raises(CourseFolderError) as error:
        course_folder_import_zip(upload=io.BytesIO(bytes(data)), name="course.zip")
    assert error.value.path == "course.zip"
    assert "damaged" in error.value.message and not Course.objects.exists()


def test_finding_07_lists_nested_300_deep_are_refused_at_their_line_within_a_bound():
    lesson = "Intro\n\n" + "".join(f"{'    ' * depth}- level {depth}\n" for depth in range(300))
    code = (
        "from courses.rendering import MarkdownError, render_markdown\n"
        f"try:\n    render_markdown({lesson!r})\n"
        "except MarkdownError as error:\n    print(error.line, error.message)\n"
    )
    done = run_bounded(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"{3 + 16} lists are nested more than 16 levels deep"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "T" * 201, "at most 200 characters (this one has 201)"),
        ("slug", "s" * 81, "a slug is at most 80 characters"),
        ("summary", "S" * 301, "at most 300 characters"),
    ],
)
def test_finding_07_over_length_module_values_name_file_and_line(tmp_path, field, value, message):
    root = write_course(tmp_path / "a")
    module = root / "one" / "02-long.md"
    front = {"slug": "long", "title": "Long", "summary": "ok", field: value}
    module.write_text(
        "---\n" + "".join(f"{k}: {v}\n" for k, v in front.items()) + "kind: theory\n---\nBody\n"
    )
    error = refusal(root)
    assert error.path.endswith("02-long.md") and error.line == 1 + list(front).index(field) + 1
    assert message in error.message


def test_finding_07_a_nul_byte_names_file_and_line(tmp_path):
    root = write_course(tmp_path / "a")
    (root / "one" / "02-nul.md").write_text("---\nslug: n\ntitle: N\nkind: theory\n---\nA\x00B\n")
    error = refusal(root)
    assert error.path.endswith("02-nul.md") and error.line == 6
    assert "NUL character" in error.message


def test_finding_07_an_over_long_or_nul_label_names_its_csv_line(tmp_path):
    root = write_course(tmp_path / "a")
    train = (root / "datasets/shared-data/train.csv").read_bytes()
    (root / "datasets/shared-data/train.csv").write_bytes(train + b"\nsome text," + b"L" * 121)
    error = refusal(root)
    assert "train.csv: line 122: a label is at most 120 characters" in str(error)


def test_finding_07_the_schemas_lengths_are_the_models_column_lengths():
    def length(model: type[models.Model], name: str) -> int | None:
        return model._meta.get_field(name).max_length  # type: ignore[union-attr]

    for model in (Course, Stage, Module, Dataset):
        assert length(model, "slug") == schema.MAX_SLUG
        assert length(model, "title") == schema.MAX_TITLE
    assert length(Module, "summary") == schema.MAX_MODULE_SUMMARY
    assert length(Dataset, "license_name") == schema.MAX_TITLE
    assert length(Example, "label") == training_data.MAX_LABEL_CHARS

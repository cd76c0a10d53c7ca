"""Finding 2: a lab's `starter:`/`solution:` could name any server file (shown to learners)."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.authoring.source import CourseFolderError
from labs.models import Lab
from labs.services.authoring import course_folder_import
from labs.services.submissions import MAX_CODE_BYTES
from tests.security.authoring_support import write_course

pytestmark = pytest.mark.django_db

ACADEMY_WSGI = Path(__file__).resolve().parents[2] / "academy" / "wsgi.py"


def refusal(root: Path) -> CourseFolderError:
    with pytest.raises(CourseFolderError) as error:
        course_folder_import(path=root)
    assert not Lab.objects.exists()
    return error.value


@pytest.mark.parametrize("starter", [str(ACADEMY_WSGI), "../../../../academy/wsgi.py", "~/x.py"])
def test_finding_02_an_absolute_or_parent_path_is_refused_at_its_line(tmp_path, starter):
    error = refusal(write_course(tmp_path / "a", starter=starter))
    assert error.path.endswith("01-lab.md") and error.line == 7
    assert "must be relative to the module's folder and stay inside the course folder" in (
        error.message
    )


def test_finding_02_a_link_to_a_file_outside_the_course_is_refused(tmp_path):
    root = write_course(tmp_path / "a", starter="labs/wsgi.py")
    (root / "one" / "labs" / "wsgi.py").symlink_to(ACADEMY_WSGI)
    error = refusal(root)
    assert error.line == 7 and "is a link or leaves the course folder" in error.message


def test_finding_02_a_link_inside_the_course_is_refused_too(tmp_path):
    root = write_course(tmp_path / "a", starter="labs/alias.py")
    (root / "one" / "labs" / "alias.py").symlink_to(root / "one" / "labs" / "solution.py")
    assert "is a link" in refusal(root).message


def test_finding_02_an_oversized_code_file_is_refused(tmp_path):
    root = write_course(tmp_path / "a")
    (root / "one" / "labs" / "starter.py").write_text("x = 1\n" * (MAX_CODE_BYTES // 6 + 1))
    error = refusal(root)
    assert error.line == 7 and f"larger than {MAX_CODE_BYTES // 1024} KB" in error.message


@pytest.mark.parametrize("starter", ["[labs/starter.py]", "{a: b}", "42"])
def test_finding_02_a_non_string_path_is_refused_with_file_and_line(tmp_path, starter):
    error = refusal(write_course(tmp_path / "a", starter=starter))
    assert error.path.endswith("01-lab.md") and error.line == 7
    assert "'lab.starter' must be non-empty text" in error.message


def test_finding_02_a_plain_file_in_the_course_folder_still_imports(tmp_path):
    course_folder_import(path=write_course(tmp_path / "a"))
    assert Lab.objects.get().starter_code == "HYPERPARAMETERS = {}\n"

"""Finding 6: a YAML alias bomb in course.yaml, a module's front matter or dataset.yaml took
~23 s of CPU and then all memory. Aliases are refused; the bomb runs under a bound here."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.authoring.parse import parse_module_file
from courses.authoring.source import CourseFolderError
from labs.services.datasets import dataset_folder_read
from tests.security.bounded import run_bounded


def bomb(levels: int = 9) -> str:
    """'Billion laughs': nine lines that expand to 9**9 strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["course.yaml", "front matter"])
def test_finding_06_an_alias_bomb_is_refused_within_a_memory_and_time_bound(tmp_path, where):
    if where == "course.yaml":
        (tmp_path / "course.yaml").write_text("slug: bomb\ntitle: Bomb\n" + bomb())
        call = f"parse_course_folder({str(tmp_path)!r})"
    else:
        (tmp_path / "01-bomb.md").write_text("---\nslug: b\n" + bomb() + "---\nBody\n")
        call = f"parse_module_file(Path({str(tmp_path / '01-bomb.md')!r}), relative_to=Path('/'))"
    code = (
        "from pathlib import Path\n"
        "from courses.authoring.parse import parse_course_folder, parse_module_file\n"
        "from courses.authoring.source import CourseFolderError\n"
        f"try:\n    {call}\nexcept CourseFolderError as error:\n    print(error)\n"
    )
    done = run_bounded(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "aliases (*name) are not allowed in course files" in done.stdout
    # The first alias is on the file's fourth line (the bomb's second).
    assert ":4: " in done.stdout


def test_finding_06_an_alias_in_module_front_matter_is_refused_at_its_line(tmp_path: Path):
    path = tmp_path / "01-a.md"
    path.write_text("---\nslug: &s a\ntitle: *s\nkind: theory\n---\nBody\n")
    with pytest.raises(CourseFolderError) as error:
        parse_module_file(path, relative_to=tmp_path)
    assert error.value.line == 3 and "aliases (*name) are not allowed" in error.value.message


def test_finding_06_an_alias_in_dataset_yaml_is_refused_at_its_line(tmp_path: Path):
    (tmp_path / "dataset.yaml").write_text("slug: &s data\ntitle: *s\nlicense: CC0\n")
    with pytest.raises(CourseFolderError) as error:
        dataset_folder_read(path=tmp_path)
    assert error.value.path.endswith("dataset.yaml") and error.value.line == 2
    assert "aliases (*name) are not allowed" in error.value.message

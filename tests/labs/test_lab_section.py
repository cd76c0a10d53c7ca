"""The `lab:` front-matter section: the new limit (trainable share) and the router metric."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.importer import CourseFolderError
from labs.services.authoring import lab_fields_from_section


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    (tmp_path / "starter.py").write_text("HYPERPARAMETERS = {}\n")
    (tmp_path / "solution.py").write_text("HYPERPARAMETERS = {'epochs': 2}\n")
    return tmp_path / "07-lab.md"


def section(**overrides):
    base = {
        "dataset": "tiny-sentiment", "starter": "starter.py", "solution": "solution.py",
        "grading": {"metric": "accuracy", "baseline": 0.3, "target": 0.9},
    }  # fmt: skip
    return {**base, **overrides}


def test_a_trainable_share_limit_is_read_from_the_limits(dataset, module_file):
    fields = lab_fields_from_section(
        section(limits={"max_trainable_share": 0.05, "wall_seconds": 300}), path=module_file
    )
    assert fields["max_trainable_share"] == 0.05
    assert fields["wall_time_seconds"] == 300


def test_no_trainable_share_limit_means_no_cap(dataset, module_file):
    assert lab_fields_from_section(section(), path=module_file)["max_trainable_share"] is None


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_trainable_share": 1.5}, "max_trainable_share: A share of the parameters"),
        ({"wall_secs": 300}, "lab limits must be a mapping with keys among max_epochs"),
    ],
)
def test_bad_limits_name_the_file_and_the_problem(dataset, module_file, limits, message):
    with pytest.raises(CourseFolderError, match=message) as error:
        lab_fields_from_section(section(limits=limits), path=module_file)
    assert "07-lab.md" in str(error.value)


def test_a_router_lab_needs_the_out_of_scope_label(dataset, module_file):
    grading = {"metric": "router", "baseline": 0.1, "target": 0.8}
    with pytest.raises(CourseFolderError, match="Name the out-of-scope class"):
        lab_fields_from_section(section(grading=grading), path=module_file)
    grading["metric_label"] = "meh"
    assert lab_fields_from_section(section(grading=grading), path=module_file)["metric"] == "router"

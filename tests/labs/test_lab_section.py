"""The `lab:` front-matter section: its schema, its defaults, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from courses.authoring.parse import parse_module_file
from courses.authoring.source import CourseFolderError
from labs import authoring_schema
from labs.authoring_schema import LabSection
from labs.models import Lab
from labs.services.authoring import lab_fields, lab_read


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    (tmp_path / "starter.py").write_text("HYPERPARAMETERS = {}\n")
    (tmp_path / "solution.py").write_text("HYPERPARAMETERS = {'epochs': 2}\n")
    return tmp_path


def section(**overrides):
    base = {
        "dataset": "tiny-sentiment",
        "starter": "starter.py",
        "solution": "solution.py",
        "grading": {"metric": "accuracy", "baseline": 0.3, "target": 0.9},
    }
    return {**base, **overrides}


def write_lab(stage: Path, lab: dict | str) -> Path:
    """A lab module file whose front matter holds `lab` (YAML text, or data to dump)."""
    text = lab if isinstance(lab, str) else yaml.safe_dump({"lab": lab}, sort_keys=False)
    path = stage / "07-lab.md"
    path.write_text(f"---\nslug: lab\ntitle: Lab\nkind: lab\n{text}---\nBody.\n")
    return path


def fields_of(stage: Path, lab: dict | str) -> dict:
    module = parse_module_file(write_lab(stage, lab), relative_to=stage)
    return lab_fields(draft=lab_read(module=module, root=stage))


def test_a_trainable_share_limit_is_read_from_the_limits(dataset, stage):
    fields = fields_of(stage, section(limits={"max_trainable_share": 0.05, "wall_seconds": 300}))
    assert fields["max_trainable_share"] == 0.05
    assert fields["wall_time_seconds"] == 300


def test_no_trainable_share_limit_means_no_cap(dataset, stage):
    assert fields_of(stage, section())["max_trainable_share"] is None


def test_omitted_keys_take_the_defaults_the_lab_model_declares(dataset, stage):
    fields = fields_of(stage, section())
    for name in authoring_schema.LAB_FIELD_PLACES:
        if name in ("baseline", "target"):  # required: no default
            continue
        model_default = Lab._meta.get_field(name).get_default()
        assert fields[name] == model_default, name
    assert authoring_schema.DEFAULT_QUEUE in Lab.Queue.values
    assert authoring_schema.DEFAULT_METRIC in Lab.Metric.values


def test_an_unknown_key_in_a_lab_section_names_the_file_and_its_line(dataset, stage):
    text = (
        "lab:\n"  # file line 5
        "  dataset: tiny-sentiment\n"
        "  starter: starter.py\n"
        "  solution: solution.py\n"
        "  limits:\n"
        "    wall_seconds: 300\n"
        "    wall_secs: 200\n"  # file line 11
        "  grading: {metric: accuracy, baseline: 0.3, target: 0.9}\n"
    )
    with pytest.raises(CourseFolderError) as error:
        fields_of(stage, text)
    assert error.value.path.endswith("07-lab.md") and error.value.line == 11
    assert "unknown key(s) in 'lab.limits': wall_secs (allowed: max_epochs," in str(error.value)


@pytest.mark.parametrize(
    ("lab", "message", "line"),
    [
        (
            section(limits={"max_trainable_share": 1.5}),
            "max_trainable_share: A share of the parameters",
            14,
        ),
        (
            section(limits={"wall_seconds": 5000}),
            "'lab.limits.wall_seconds' must be a whole number of seconds from 1 to 2700",
            14,
        ),
        (section(hooks=["preprocess", "postprocess"]), "unknown hook(s): postprocess", 13),
        (section(queue="tpu"), "queue: Value 'tpu' is not a valid choice.", 13),
        (
            section(grading={"metric": "accuracy", "target": 0.9}),
            "'lab.grading' has no 'baseline'",
            9,
        ),
        (section(dataset="nope"), "lab dataset 'nope' is not in datasets/", 6),
        (
            section(starter="missing.py"),
            "lab starter file missing.py not found next to the module",
            7,
        ),
    ],
)
def test_a_bad_lab_section_names_the_file_the_line_and_the_problem(
    dataset, stage, lab, message, line
):
    with pytest.raises(CourseFolderError) as error:
        fields_of(stage, lab)
    assert message in error.value.message
    assert error.value.path.endswith("07-lab.md") and error.value.line == line, str(error.value)


def test_a_router_lab_needs_the_out_of_scope_label(dataset, stage):
    grading = {"metric": "router", "baseline": 0.1, "target": 0.8}
    with pytest.raises(CourseFolderError, match="Name the out-of-scope class"):
        fields_of(stage, section(grading=grading))
    grading["metric_label"] = "meh"
    assert fields_of(stage, section(grading=grading))["metric"] == "router"


def test_a_lab_section_on_a_theory_module_is_refused_at_its_line(stage):
    path = stage / "01-theory.md"
    path.write_text("---\nslug: t\ntitle: T\nkind: theory\nlab:\n  dataset: x\n---\nBody.\n")
    with pytest.raises(CourseFolderError, match="only allowed on a module of kind lab") as error:
        parse_module_file(path, relative_to=stage)
    assert error.value.line == 5


def test_the_exported_section_reads_back_as_the_same_fields(dataset, stage):
    fields = fields_of(stage, section(limits={"max_trainable_share": 0.05}, train_subset=120))
    values = {name: fields[name] for name in authoring_schema.LAB_FIELD_PLACES}
    written = LabSection.from_lab_values(
        values, dataset="tiny-sentiment", starter="starter.py", solution="solution.py"
    ).front_matter()
    assert "metric_label" not in written["grading"]  # unset: left out, as an author would
    assert fields_of(stage, written) == fields


# --------------------------------------------------------------------------
# `checkpoint:` (what the saved weights may differ in) and `grading.floors`

RULES = {
    "may_change": ["classifier.*"],
    "low_rank": ["bert.encoder.layer.*.attention.self.query.weight"],
    "max_rank": 8,
}


def test_a_checkpoint_section_is_read_into_the_labs_weight_rules(dataset, stage):
    fields = fields_of(stage, section(checkpoint=RULES))
    assert fields["checkpoint_rules"] == RULES


def test_no_checkpoint_section_means_no_weight_rules(dataset, stage):
    assert fields_of(stage, section())["checkpoint_rules"] is None


def test_floors_are_read_from_the_grading_section(dataset, stage):
    grading = {"baseline": 0.3, "target": 0.9, "floors": {"class_recall": 0.3, "macro_f1": 0.5}}
    fields = fields_of(stage, section(grading=grading))
    assert fields["pass_floors"] == {"class_recall": 0.3, "macro_f1": 0.5}
    assert fields_of(stage, section())["pass_floors"] == {}


@pytest.mark.parametrize(
    ("lab", "message", "line"),
    [
        (
            section(checkpoint={"may_change": ["classifier.*"], "may_chnage": ["x"]}),
            "unknown key(s) in 'lab.checkpoint': may_chnage (allowed: low_rank, max_rank, "
            "may_change)",
            16,
        ),
        (
            section(checkpoint={**RULES, "max_rank": 0}),
            "'lab.checkpoint.max_rank' must be a positive whole number",
            18,
        ),
        (
            section(checkpoint={"low_rank": ["*.query.weight"]}),
            "'lab.checkpoint': low_rank needs max_rank",
            13,
        ),
        (
            section(checkpoint={"may_change": ["classifier.*"], "max_rank": 4}),
            "'lab.checkpoint': max_rank applies to the low_rank tensors",
            13,
        ),
        (section(checkpoint={}), "name the tensors that may change (may_change)", 13),
        (
            section(checkpoint={"may_change": ["classifier.*", ""]}),
            "'lab.checkpoint.may_change.1' must be non-empty text",
            16,
        ),
        (
            section(grading={"baseline": 0.3, "target": 0.9, "floors": {"recall": 0.3}}),
            "pass_floors: Unknown floor(s): recall (floors: class_recall, macro_f1, class_f1).",
            12,
        ),
        (
            section(grading={"baseline": 0.3, "target": 0.9, "floors": {"macro_f1": 1.5}}),
            "pass_floors: The macro_f1 floor is a number above 0, at most 1.",
            12,
        ),
        (
            section(grading={"baseline": 0.3, "target": 0.9, "floors": {"macro_f1": "high"}}),
            "'lab.grading.floors.macro_f1' must be a number",
            13,
        ),
    ],
)
def test_a_bad_checkpoint_or_floors_section_names_the_file_the_line_and_the_problem(
    dataset, stage, lab, message, line
):
    with pytest.raises(CourseFolderError) as error:
        fields_of(stage, lab)
    assert message in error.value.message
    assert error.value.path.endswith("07-lab.md") and error.value.line == line, str(error.value)


@pytest.mark.parametrize(
    ("rules", "floors"),
    [
        (RULES, {"class_recall": 0.3}),
        ({"may_change": ["classifier.*", "bert.pooler.*"]}, {"macro_f1": 0.5, "class_f1": 0.2}),
    ],
)
def test_weight_rules_and_floors_export_and_read_back_unchanged(dataset, stage, rules, floors):
    grading = {"baseline": 0.3, "target": 0.9, "floors": floors}
    fields = fields_of(stage, section(checkpoint=rules, grading=grading))
    values = {name: fields[name] for name in authoring_schema.LAB_FIELD_PLACES}
    written = LabSection.from_lab_values(
        values, dataset="tiny-sentiment", starter="starter.py", solution="solution.py"
    ).front_matter()
    assert written["checkpoint"] == rules  # no empty list or null rank written
    assert written["grading"]["floors"] == floors
    assert fields_of(stage, written) == fields


def test_a_lab_without_rules_or_floors_exports_neither(dataset, stage):
    fields = fields_of(stage, section())
    values = {name: fields[name] for name in authoring_schema.LAB_FIELD_PLACES}
    written = LabSection.from_lab_values(
        values, dataset="tiny-sentiment", starter="starter.py", solution="solution.py"
    ).front_matter()
    assert "checkpoint" not in written and "floors" not in written["grading"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("checkpoint_rules", {"may_change": "classifier.*"}, "must be a list"),
        ("checkpoint_rules", {"low_rank": ["*.query.weight"]}, "low_rank needs max_rank"),
        ("checkpoint_rules", {**RULES, "max_rank": 2.5}, "must be a positive whole number"),
        ("pass_floors", {"class_recall": True}, "The class_recall floor is a number"),
        ("pass_floors", ["class_recall"], "A mapping of floor names to values."),
    ],
)
def test_the_admin_s_json_for_rules_and_floors_is_checked_by_the_same_rules(
    lab, field, value, message
):
    from django.core.exceptions import ValidationError

    setattr(lab, field, value)
    with pytest.raises(ValidationError) as error:
        lab.full_clean()
    assert message in " ".join(error.value.message_dict[field])


# --------------------------------------------------------------------------
# `ablations:` (the reference without its idea, each of which must fail)

ABLATION = {"name": "no-weights", "file": "ablation.py", "without": "class weights"}


def test_ablations_are_read_with_their_code(dataset, stage):
    (stage / "ablation.py").write_text("HYPERPARAMETERS = {'epochs': 1}\n")
    fields = fields_of(stage, section(ablations=[ABLATION]))
    assert fields["ablations"] == [
        {
            "name": "no-weights",
            "without": "class weights",
            "code": "HYPERPARAMETERS = {'epochs': 1}\n",
        }
    ]


@pytest.mark.parametrize(
    ("ablations", "files", "message", "line"),
    [
        ([ABLATION], {}, "ablation file ablation.py not found next to the module", 15),
        ([ABLATION, {**ABLATION}], {"ablation.py": ""}, "ablation name(s) used twice", 13),
        ([{**ABLATION, "name": "No Weights"}], {"ablation.py": ""}, "is not a valid slug", 14),
        ([{"name": "x", "file": "ablation.py"}], {"ablation.py": ""}, "has no 'without'", 14),
    ],
)
def test_a_bad_ablation_names_the_file_the_line_and_the_problem(
    dataset, stage, ablations, files, message, line
):
    for name, text in files.items():
        (stage / name).write_text(text)
    with pytest.raises(CourseFolderError) as error:
        fields_of(stage, section(ablations=ablations))
    assert message in error.value.message, error.value.message
    assert error.value.line == line, str(error.value)


def test_an_ablation_with_a_syntax_error_names_its_own_file_and_line(dataset, stage):
    (stage / "ablation.py").write_text("x = 1\ndef broken(:\n")
    with pytest.raises(CourseFolderError) as error:
        fields_of(stage, section(ablations=[ABLATION]))
    assert error.value.path.endswith("ablation.py") and error.value.line == 2


def test_ablations_export_as_files_and_read_back_unchanged(dataset, course, tmp_path):
    from labs.exporting import course_folder_export
    from labs.services.authoring import course_folder_import
    from tests.factories import ModuleFactory

    module = ModuleFactory.create(
        course=course, stage=course.stages.first(), slug="lab-x", kind="lab", position=20
    )
    ablations = [{"name": "no-weights", "without": "class weights", "code": "x = 2\n"}]
    Lab.objects.create(
        module=module,
        dataset=dataset,
        starter_code="x = 0\n",
        reference_solution="x = 1\n",
        baseline=0.3,
        target=0.9,
        ablations=ablations,
    )
    files = course_folder_export(course=course, dest=tmp_path / "out")

    assert any(path.name == "ablation-no-weights.py" for path in files)
    Lab.objects.filter(module=module).update(ablations=[])
    course_folder_import(path=tmp_path / "out")
    assert Lab.objects.get(module=module).ablations == ablations


def test_fixed_hyperparameters_are_read_checked_and_exported(dataset, stage):
    fixed = {"learning_rate": 5e-4, "warmup_ratio": 0.1}
    fields = fields_of(stage, section(fixed_hyperparameters=fixed))
    assert fields["fixed_hyperparameters"] == fixed
    values = {name: fields[name] for name in authoring_schema.LAB_FIELD_PLACES}
    written = LabSection.from_lab_values(
        values, dataset="tiny-sentiment", starter="starter.py", solution="solution.py"
    ).front_matter()
    assert written["fixed_hyperparameters"] == fixed
    assert fields_of(stage, section())["fixed_hyperparameters"] == {}
    with pytest.raises(CourseFolderError) as error:
        fields_of(stage, section(fixed_hyperparameters={"lr": 1e-3}))
    assert "Unknown hyperparameter(s): lr" in error.value.message

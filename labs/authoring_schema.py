"""The schema of labs' part of a course folder: a lab module's `lab:` section, dataset.yaml.

These defaults are THE defaults of a lab: `labs.models.Lab` declares its field
defaults from the constants below, the importer fills an omitted key from the
schema, and the exporter writes through the schema. No Django models are
imported here (the models import this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from courses.authoring.schema import (
    MAX_TITLE,
    Section,
    Slug,
    Summary,
    Text,
    at_most,
    refuse,
    whole_number,
)
from labs.training.contract import HOOKS

DEFAULT_SUBSET_SEED = 13
DEFAULT_DEV_FRACTION = 0.1
DEFAULT_BASE_MODEL = "minilm-l6"
DEFAULT_WALL_SECONDS = 600
DEFAULT_MEMORY_MB = 6144
DEFAULT_MAX_EPOCHS = 5
DEFAULT_ATTEMPTS_PER_DAY = 10
DEFAULT_QUEUE = "cpu"  # Lab.Queue.CPU
DEFAULT_METRIC = "accuracy"  # Lab.Metric.ACCURACY
DEFAULT_PASS_MARK = 60.0
# The sandbox's wall limit plus grading must end before Celery's soft limit.
MAX_LAB_WALL_SECONDS = 2700

Positive = Annotated[int, whole_number(low=1, problem="must be a positive whole number")]
Whole = Annotated[int, whole_number(low=0, problem="must be a whole number (0 or more)")]
WallSeconds = Annotated[
    int,
    whole_number(
        low=1,
        high=MAX_LAB_WALL_SECONDS,
        problem=f"must be a whole number of seconds from 1 to {MAX_LAB_WALL_SECONDS}",
    ),
]


def _hooks(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(HOOKS))
    if unknown:
        raise refuse(
            f"unknown hook(s): {', '.join(unknown)} (the engine calls: {', '.join(HOOKS)})"
        )
    return value


class LabLimits(Section):
    wall_seconds: WallSeconds = DEFAULT_WALL_SECONDS
    memory_mb: Positive = DEFAULT_MEMORY_MB
    max_epochs: Positive = DEFAULT_MAX_EPOCHS
    # No cap unless the lab sets one (a share of the parameters, checked by Lab.clean).
    max_trainable_share: float | None = None


class LabGrading(Section):
    metric: str = DEFAULT_METRIC
    metric_label: str = ""
    baseline: float
    target: float
    pass_mark: float = DEFAULT_PASS_MARK
    # Floor name -> the least a pass needs beside the score; the names and ranges are the
    # model's rule (Lab.Floor, Lab.clean), like the metric's choices.
    floors: dict[str, float] = Field(default_factory=dict)


class LabCheckpoint(Section):
    """What the saved model may differ in from the base model, checked by the grader.

    Patterns are globs (`*` also matches dots) over the checkpoint's tensor names, e.g.
    `classifier.*` or `bert.encoder.layer.*.attention.self.query.weight`. A tensor that
    matches `may_change` may change freely; one that matches `low_rank` only by a change
    W - W_base of rank at most `max_rank`; every other tensor must equal the base model's.
    Lab.clean validates a row edited in the admin with this same class.
    """

    may_change: list[Text] = Field(default_factory=list)
    low_rank: list[Text] = Field(default_factory=list)
    max_rank: Positive | None = None

    @model_validator(mode="after")
    def _rules_that_mean_something(self) -> LabCheckpoint:
        if not self.may_change and not self.low_rank:
            raise refuse(
                "name the tensors that may change (may_change) or change by low rank "
                "(low_rank); without either, no run could pass"
            )
        if self.low_rank and self.max_rank is None:
            raise refuse("low_rank needs max_rank, the highest rank a change may have")
        if self.max_rank is not None and not self.low_rank:
            raise refuse("max_rank applies to the low_rank tensors; name them in low_rank")
        return self


class LabAblation(Section):
    """The reference solution without its idea: a file next to the module that must fail.

    `validate_course` runs every ablation beside the reference and the starter; a lab
    whose ablation passes can be passed without the skill it teaches."""

    name: Slug
    file: Text
    # What was taken out, in a phrase: "build_scheduler (the engine's default schedule)".
    without: Text


def _unique_names(value: list[LabAblation]) -> list[LabAblation]:
    names = [ablation.name for ablation in value]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise refuse(f"ablation name(s) used twice: {', '.join(repeated)}")
    return value


def _empty_is_default(value: Any) -> Any:
    # `limits:` with nothing under it reads as YAML null: the defaults apply.
    return {} if value is None else value


class LabSection(Section):
    """A lab module's `lab:` section. Choices (queue, metric) and the rubric's rules are
    the model's (`Lab.clean_fields`, `Lab.clean`), checked when the section is imported."""

    dataset: Slug
    train_subset: Positive | None = None
    subset_seed: Whole = DEFAULT_SUBSET_SEED
    dev_fraction: float = DEFAULT_DEV_FRACTION
    base_model: Text = DEFAULT_BASE_MODEL
    # Files next to the module file, e.g. labs/first-fine-tune/starter.py.
    starter: Text
    solution: Text
    hooks: Annotated[list[str], AfterValidator(_hooks)] = Field(default_factory=list)
    # Set by the lab, over the learner's HYPERPARAMETERS (checked by Lab.clean).
    fixed_hyperparameters: dict[str, Any] = Field(default_factory=dict)
    limits: Annotated[LabLimits, BeforeValidator(_empty_is_default)] = Field(
        default_factory=LabLimits
    )
    attempts_per_day: Positive = DEFAULT_ATTEMPTS_PER_DAY
    queue: str = DEFAULT_QUEUE
    grading: LabGrading
    # No section: the saved model may differ from the base model anywhere.
    checkpoint: LabCheckpoint | None = None
    ablations: Annotated[list[LabAblation], AfterValidator(_unique_names)] = Field(
        default_factory=list
    )

    def lab_values(self) -> dict[str, Any]:
        """The Lab model's fields this section sets (not the dataset row or the code)."""
        data = self.model_dump()
        values: dict[str, Any] = {}
        for name, place in LAB_FIELD_PLACES.items():
            value: Any = data
            for key in place:
                value = value[key]
            values[name] = value
        return values

    @classmethod
    def from_lab_values(
        cls,
        values: Mapping[str, Any],
        *,
        dataset: str,
        starter: str,
        solution: str,
        ablations: list[dict[str, str]] | None = None,
    ) -> LabSection:
        """The section that `lab_values` turns back into `values` (the exporter's way)."""
        data: dict[str, Any] = {
            "dataset": dataset,
            "starter": starter,
            "solution": solution,
            "ablations": ablations or [],
        }
        for name, place in LAB_FIELD_PLACES.items():
            target = data
            for key in place[:-1]:
                target = target.setdefault(key, {})
            target[place[-1]] = values[name]
        return cls.model_validate(data)

    def front_matter(self) -> dict[str, Any]:
        """As an author writes it: every key, except a cap, label, floor or rule the lab does
        not have."""
        data = self.model_dump(mode="json", exclude_none=True)
        if not self.grading.metric_label:
            del data["grading"]["metric_label"]
        if not self.grading.floors:
            del data["grading"]["floors"]
        if not self.ablations:
            del data["ablations"]
        if not self.fixed_hyperparameters:
            del data["fixed_hyperparameters"]
        for key in ("may_change", "low_rank"):
            if self.checkpoint is not None and not getattr(self.checkpoint, key):
                del data["checkpoint"][key]
        return data


# Lab model field -> where it is written in the `lab:` section; the importer, the exporter
# and the errors of Lab.clean (which name a model field) all go through this one table.
LAB_FIELD_PLACES: dict[str, tuple[str, ...]] = {
    "train_subset_size": ("train_subset",),
    "subset_seed": ("subset_seed",),
    "dev_fraction": ("dev_fraction",),
    "base_model": ("base_model",),
    "required_hooks": ("hooks",),
    "fixed_hyperparameters": ("fixed_hyperparameters",),
    "wall_time_seconds": ("limits", "wall_seconds"),
    "memory_mb": ("limits", "memory_mb"),
    "max_epochs": ("limits", "max_epochs"),
    "max_trainable_share": ("limits", "max_trainable_share"),
    "attempts_per_day": ("attempts_per_day",),
    "queue": ("queue",),
    "metric": ("grading", "metric"),
    "metric_label": ("grading", "metric_label"),
    "baseline": ("grading", "baseline"),
    "target": ("grading", "target"),
    "pass_mark": ("grading", "pass_mark"),
    "pass_floors": ("grading", "floors"),
    "checkpoint_rules": ("checkpoint",),
}
# The Lab fields a section names directly, for errors: dataset and the two code files.
LAB_FILE_PLACES: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset",),
    "starter_code": ("starter",),
    "reference_solution": ("solution",),
    "ablations": ("ablations",),
}


class DatasetMeta(Section):
    """datasets/<slug>/dataset.yaml (the rows are train.csv and test.csv beside it)."""

    slug: Slug
    title: Annotated[Text, at_most(MAX_TITLE)]
    license: Annotated[Text, at_most(MAX_TITLE)]
    description: Summary = ""

"""Labs as course code: the `lab:` section of a lab module's front matter becomes a Lab row."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

from courses.importer import CourseFolderError, CourseSpec
from courses.models import Course, Module
from courses.services import ImportReport
from labs.datasets import DatasetError
from labs.models import Dataset, Lab
from labs.services.datasets import dataset_import_folder

logger = logging.getLogger(__name__)

# The sandbox's wall limit plus grading must end before Celery's soft limit.
MAX_LAB_WALL_SECONDS = 2700

LAB_KEYS = {
    "dataset", "train_subset", "subset_seed", "dev_fraction", "base_model", "starter", "solution",
    "hooks", "limits", "attempts_per_day", "queue", "grading",
}  # fmt: skip
LIMIT_KEYS = {"wall_seconds", "memory_mb", "max_epochs", "max_trainable_share"}
HOOKS = {"preprocess", "prepare_model", "build_optimizer", "build_scheduler", "training_step"}


def course_import_labs(spec: CourseSpec, course: Course, report: ImportReport) -> None:
    """Course-import extension: datasets from `datasets/`, then each module's `lab:` section."""
    datasets_dir = spec.root / "datasets"
    for folder in (
        sorted(p for p in datasets_dir.glob("*") if p.is_dir()) if datasets_dir.is_dir() else []
    ):
        try:
            dataset, outcome = dataset_import_folder(path=folder)
        except DatasetError as exc:
            raise CourseFolderError(folder, str(exc)) from None
        getattr(report, outcome).append(f"dataset {dataset.slug}")
    for module_spec in spec.modules:
        section = module_spec.extensions.get("lab")
        if section is None:
            continue
        path = spec.root / module_spec.source_path
        module = Module.objects.get(course=course, slug=module_spec.slug)
        if module.kind != Module.Kind.LAB:
            raise CourseFolderError(
                path, "a 'lab:' section is only allowed on a module of kind lab"
            )
        fields = lab_fields_from_section(section, path=path)
        lab, created = Lab.objects.get_or_create(module=module, defaults=fields)
        if not created:
            changed = [k for k, v in fields.items() if getattr(lab, k) != v]
            if changed:
                Lab.objects.filter(pk=lab.pk).update(**fields)
                report.updated.append(f"lab {module.slug}")
        else:
            report.created.append(f"lab {module.slug}")


def lab_fields_from_section(section: Any, *, path: Path) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise CourseFolderError(path, "'lab:' must be a mapping")
    unknown = sorted(set(section) - LAB_KEYS)
    if unknown:
        raise CourseFolderError(path, f"unknown lab key(s): {', '.join(unknown)}")
    for key in ("dataset", "starter", "solution", "grading"):
        if key not in section:
            raise CourseFolderError(path, f"lab section is missing '{key}'")
    try:
        dataset = Dataset.objects.get(slug=section["dataset"])
    except Dataset.DoesNotExist:
        raise CourseFolderError(
            path, f"lab dataset '{section['dataset']}' is not in datasets/"
        ) from None
    code = {}
    for key in ("starter", "solution"):
        code_path = path.parent / section[key]
        if not code_path.is_file():
            raise CourseFolderError(
                path, f"lab {key} file {section[key]} not found next to the module"
            )
        code[key] = code_path.read_text(encoding="utf-8")
        try:
            ast.parse(code[key])
        except SyntaxError as exc:
            raise CourseFolderError(
                code_path, f"syntax error: {exc.msg}", line=exc.lineno
            ) from None
    hooks = list(section.get("hooks", []))
    if set(hooks) - HOOKS:
        raise CourseFolderError(path, f"unknown hook(s): {', '.join(sorted(set(hooks) - HOOKS))}")
    limits = section.get("limits", {}) or {}
    if not isinstance(limits, dict) or set(limits) - LIMIT_KEYS:
        raise CourseFolderError(
            path, f"lab limits must be a mapping with keys among {', '.join(sorted(LIMIT_KEYS))}"
        )
    grading = section["grading"]
    fields = {
        "dataset": dataset,
        "train_subset_size": section.get("train_subset"),
        "subset_seed": section.get("subset_seed", 13),
        "dev_fraction": section.get("dev_fraction", 0.1),
        "base_model": section.get("base_model", "minilm-l6"),
        "starter_code": code["starter"],
        "reference_solution": code["solution"],
        "required_hooks": hooks,
        "wall_time_seconds": limits.get("wall_seconds", 600),
        "memory_mb": limits.get("memory_mb", 6144),
        "max_trainable_share": limits.get("max_trainable_share"),
        "max_epochs": limits.get("max_epochs", 5),
        "attempts_per_day": section.get("attempts_per_day", 10),
        "queue": section.get("queue", Lab.Queue.CPU),
        "metric": grading.get("metric", Lab.Metric.ACCURACY),
        "metric_label": grading.get("metric_label", ""),
        "baseline": grading.get("baseline"),
        "target": grading.get("target"),
        "pass_mark": grading.get("pass_mark", 60),
    }
    lab = Lab(module=Module(), **fields)
    try:
        lab.clean_fields(exclude=["module"])
        lab.clean()
    except Exception as exc:  # ValidationError: flatten to one sentence naming the file
        messages = getattr(exc, "message_dict", None) or {"lab": [str(exc)]}
        raise CourseFolderError(
            path, "; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
        ) from None
    if fields["wall_time_seconds"] > MAX_LAB_WALL_SECONDS:
        raise CourseFolderError(path, f"wall_seconds must be at most {MAX_LAB_WALL_SECONDS}")
    return fields

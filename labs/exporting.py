"""Course export extension: each lab's `lab:` section with its code files, and the
course's datasets, written so that `labs.services.course_import_labs` reads them back
unchanged.

Held-out rows leave the database only here: a course export is an operator's shell
command that writes the course folder instructors keep in git (which held them in
the first place), never a page or a learner- or HR-facing export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from courses.models import Course
from labs.models import Dataset, Example, Lab
from labs.training.data import write_csv


def lab_section(lab: Lab, *, code_dir: str) -> dict[str, Any]:
    """The front-matter section that `lab_fields_from_section` turns back into these fields."""
    grading: dict[str, Any] = {"metric": lab.metric}
    if lab.metric_label:
        grading["metric_label"] = lab.metric_label
    grading |= {"baseline": lab.baseline, "target": lab.target, "pass_mark": lab.pass_mark}
    return {
        "dataset": lab.dataset.slug,
        "train_subset": lab.train_subset_size,
        "subset_seed": lab.subset_seed,
        "dev_fraction": lab.dev_fraction,
        "base_model": lab.base_model,
        "starter": f"{code_dir}/starter.py",
        "solution": f"{code_dir}/solution.py",
        "hooks": list(lab.required_hooks),
        "limits": {
            "wall_seconds": lab.wall_time_seconds,
            "memory_mb": lab.memory_mb,
            "max_epochs": lab.max_epochs,
            **(
                {"max_trainable_share": lab.max_trainable_share}
                if lab.max_trainable_share is not None
                else {}
            ),
        },
        "attempts_per_day": lab.attempts_per_day,
        "queue": lab.queue,
        "grading": grading,
    }


def dataset_export(dataset: Dataset, folder: Path) -> None:
    folder.mkdir(parents=True)
    meta = {"slug": dataset.slug, "title": dataset.title, "license": dataset.license_name}
    if dataset.description:
        meta["description"] = dataset.description
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    (folder / "SOURCE.md").write_text(dataset.source_markdown, encoding="utf-8")
    for split, name in ((Example.Split.TRAIN, "train.csv"), (Example.Split.HELDOUT, "test.csv")):
        rows = list(
            dataset.examples.filter(split=split).order_by("position").values_list("text", "label")
        )
        # The one dataset CSV format (the engine's), so a shipped file exports unchanged.
        write_csv(folder / name, rows)


def course_export_labs(course: Course, root: Path, fronts: dict[int, dict[str, Any]]) -> None:
    labs = Lab.objects.filter(module__course=course).select_related("module__stage", "dataset")
    datasets: dict[str, Dataset] = {}
    for lab in labs:
        module = lab.module
        code_dir = f"labs/{module.slug}"
        folder = root / module.stage.slug / code_dir
        folder.mkdir(parents=True)
        (folder / "starter.py").write_text(lab.starter_code, encoding="utf-8")
        (folder / "solution.py").write_text(lab.reference_solution, encoding="utf-8")
        fronts[module.pk]["lab"] = lab_section(lab, code_dir=code_dir)
        datasets[lab.dataset.slug] = lab.dataset
    for slug, dataset in sorted(datasets.items()):
        dataset_export(dataset, root / "datasets" / slug)

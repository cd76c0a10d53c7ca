"""A whole course folder written from the database: the course's part
(`courses.authoring.export`), each lab's `lab:` section (through the schema that
reads it back, `labs.authoring_schema.LabSection`) with its code files, and the
course's datasets, so that `labs.services.authoring.course_folder_import` reads them
back unchanged.

Held-out rows leave the database only here: a course export is an operator's shell
command that writes the course folder instructors keep in git (which held them in
the first place), never a page or a learner- or HR-facing export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from courses.authoring.export import course_export
from courses.authoring.source import explain
from courses.models import Course
from labs.authoring_schema import LAB_FIELD_PLACES, DatasetMeta, LabSection
from labs.models import Dataset, Example, Lab
from labs.training.data import write_csv


class LabExportError(ValueError):
    """A lab whose row the course-folder schema refuses: its export would not import back."""


def lab_section(lab: Lab, *, code_dir: str) -> dict[str, Any]:
    """The `lab:` front-matter section that the importer turns back into this lab's fields."""
    try:
        section = LabSection.from_lab_values(
            {name: getattr(lab, name) for name in LAB_FIELD_PLACES},
            dataset=lab.dataset.slug,
            starter=f"{code_dir}/starter.py",
            solution=f"{code_dir}/solution.py",
            ablations=[
                {
                    "name": a["name"],
                    "file": f"{code_dir}/{ablation_file(a)}",
                    "without": a["without"],
                }
                for a in lab.ablations
            ],
        )
    except ValidationError as exc:
        _, problem = explain(exc, model=LabSection, prefix=("lab",))
        raise LabExportError(f"Lab '{lab.module.slug}' cannot be exported: {problem}") from None
    return section.front_matter()


def ablation_file(ablation: dict[str, str]) -> str:
    return f"ablation-{ablation['name']}.py"


def dataset_export(dataset: Dataset, folder: Path) -> None:
    folder.mkdir(parents=True)
    meta = DatasetMeta(
        slug=dataset.slug,
        title=dataset.title,
        license=dataset.license_name,
        description=dataset.description,
    ).model_dump(exclude_defaults=True)
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    (folder / "SOURCE.md").write_text(dataset.source_markdown, encoding="utf-8")
    for split, name in (
        (Example.Split.TRAIN, "train.csv"),
        (Example.Split.HELDOUT, "test.csv"),
        (Example.Split.DEV, "dev.csv"),
    ):
        rows = list(
            dataset.examples.filter(split=split).order_by("position").values_list("text", "label")
        )
        if split == Example.Split.DEV and not rows:
            continue  # dev.csv is optional: most datasets carve dev from train
        # The one dataset CSV format (the engine's), so a shipped file exports unchanged.
        write_csv(folder / name, rows)


def course_folder_export(*, course: Course, dest: Path | str) -> list[Path]:
    """Write `course` with its labs and datasets as a course folder at `dest` (created; must
    be empty) and list the files."""
    labs = list(
        Lab.objects.filter(module__course=course).select_related("module__stage", "dataset")
    )
    # Every section first: a lab the schema refuses stops the export before a file is written.
    sections = {lab.module_id: lab_section(lab, code_dir=f"labs/{lab.module.slug}") for lab in labs}
    root = Path(dest)
    course_export(course=course, dest=root, lab_sections=sections)
    datasets: dict[str, Dataset] = {}
    for lab in labs:
        folder = root / lab.module.stage.slug / "labs" / lab.module.slug
        folder.mkdir(parents=True)
        (folder / "starter.py").write_text(lab.starter_code, encoding="utf-8")
        (folder / "solution.py").write_text(lab.reference_solution, encoding="utf-8")
        for ablation in lab.ablations:
            (folder / ablation_file(ablation)).write_text(ablation["code"], encoding="utf-8")
        datasets[lab.dataset.slug] = lab.dataset
    for slug, dataset in sorted(datasets.items()):
        dataset_export(dataset, root / "datasets" / slug)
    return sorted(path for path in root.rglob("*") if path.is_file())

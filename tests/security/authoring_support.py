"""A small course folder with one lab and its dataset, written for the authoring findings."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import small_dataset_bytes

LAB_MODULE = """\
---
slug: {slug}-lab
title: A lab
kind: lab
lab:
  dataset: {dataset}
  starter: {starter}
  solution: labs/solution.py
  grading: {{metric: accuracy, baseline: 0.3, target: 0.9}}
---
Train it.
"""


def write_course(
    root: Path,
    *,
    slug: str = "course-a",
    dataset: str = "shared-data",
    starter: str = "labs/starter.py",
    train: bytes | None = None,
    heldout: bytes | None = None,
    title: str = "Course A",
) -> Path:
    """Write `root` as a course folder: one stage, one lab module, datasets/<dataset>/."""
    (root / "one" / "labs").mkdir(parents=True, exist_ok=True)
    (root / "course.yaml").write_text(
        f"slug: {slug}\ntitle: {title}\nstages:\n  - slug: one\n    title: One\n"
    )
    (root / "one" / "01-lab.md").write_text(
        LAB_MODULE.format(slug=slug, dataset=dataset, starter=starter)
    )
    (root / "one" / "labs" / "starter.py").write_text("HYPERPARAMETERS = {}\n")
    (root / "one" / "labs" / "solution.py").write_text("HYPERPARAMETERS = {'epochs': 2}\n")
    default_train, default_heldout = small_dataset_bytes()
    data = root / "datasets" / dataset
    data.mkdir(parents=True, exist_ok=True)
    (data / "dataset.yaml").write_text(f"slug: {dataset}\ntitle: Shared data\nlicense: CC0\n")
    (data / "train.csv").write_bytes(default_train if train is None else train)
    (data / "test.csv").write_bytes(default_heldout if heldout is None else heldout)
    (data / "SOURCE.md").write_text("# Made up\n\nFor tests.\n")
    return root

"""Writes for datasets: a course folder's `datasets/<slug>/` or an admin upload become rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction

from courses.authoring.source import CourseFolderError, YamlSource, read_text
from courses.models import Course
from courses.rendering import render_markdown
from labs.authoring_schema import DatasetMeta
from labs.datasets import DatasetError, ParsedDataset, parse_dataset
from labs.models import Dataset, Example, Lab, Submission

logger = logging.getLogger(__name__)


@transaction.atomic
def dataset_import(
    *,
    slug: str,
    title: str,
    license_name: str,
    source_markdown: str,
    parsed: ParsedDataset,
    description: str = "",
    course: Course | None = None,
) -> tuple[Dataset, str]:
    """Create or replace a dataset's rows. Returns (dataset, "created" | "updated" | "unchanged").

    `course` is the course whose folder is being imported: a dataset that another course's
    labs use is theirs, and is not replaced (see dataset_replace_refusal)."""
    fields = {
        "title": title,
        "description": description,
        "license_name": license_name,
        "source_markdown": source_markdown,
        "source_html": render_markdown(source_markdown).html,
        "labels": parsed.labels,
    }
    dataset, created = Dataset.objects.select_for_update().get_or_create(slug=slug, defaults=fields)
    unchanged = dataset.content_hash == parsed.content_hash and all(
        getattr(dataset, k) == v for k, v in fields.items()
    )
    if not created and not unchanged:
        refusal = dataset_replace_refusal(dataset=dataset, labels=parsed.labels, course=course)
        if refusal:
            raise DatasetError(refusal)
    if not created and dataset.content_hash == parsed.content_hash:
        changed = any(getattr(dataset, k) != v for k, v in fields.items())
        if changed:
            Dataset.objects.filter(pk=dataset.pk).update(**fields)
        return dataset, "updated" if changed else "unchanged"
    for name, value in fields.items():
        setattr(dataset, name, value)
    dataset.content_hash = parsed.content_hash
    dataset.save()
    dataset.examples.all().delete()
    rows = [
        (dataset.pk, split, i, text, label)
        for split, split_rows in (
            (Example.Split.TRAIN, parsed.train),
            (Example.Split.HELDOUT, parsed.heldout),
            (Example.Split.DEV, parsed.dev),
        )
        for i, (text, label) in enumerate(split_rows)
    ]
    # executemany instead of bulk_create: datasets are tens of thousands of rows and
    # the ORM's per-object SQL compilation made a course import take ~20 s on SQLite.
    table = Example._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (dataset_id, split, position, text, label) VALUES (%s, %s, %s, %s, %s)",  # noqa: S608
            rows,
        )
    return dataset, "created" if created else "updated"


def dataset_replace_refusal(
    *, dataset: Dataset, labels: list[str], course: Course | None
) -> str | None:
    """Why new rows or metadata must not replace `dataset`'s, or None when they may.

    Datasets are known by slug across every course. A second course reusing a slug would
    silently change another course's grading, so a dataset used by another course's labs
    is refused; and the label order fixes the class ids of every checkpoint already
    graded, so the labels may not change once a lab using the dataset has a graded run.
    """
    if course is not None:
        others = sorted(
            set(
                Lab.objects.filter(dataset=dataset)
                .exclude(module__course=course)
                .values_list("module__course__slug", flat=True)
            )
        )
        if others:
            return (
                f"dataset slug '{dataset.slug}' is already used by the labs of course(s) "
                f"{', '.join(others)}; one course cannot replace another's dataset: give "
                "yours another slug (in its dataset.yaml and its labs' 'dataset:')"
            )
    if labels != dataset.labels:
        graded = sorted(
            set(
                Lab.objects.filter(
                    dataset=dataset, submissions__status=Submission.Status.GRADED
                ).values_list("module__slug", flat=True)
            )
        )
        if graded:
            return (
                f"dataset '{dataset.slug}': the labels would change from "
                f"{', '.join(dataset.labels)} to {', '.join(labels)}, but lab(s) "
                f"{', '.join(graded)} have graded runs whose checkpoints and re-grades rely "
                "on the label order; keep the labels, or import the new rows under a new slug"
            )
    return None


@dataclass(frozen=True)
class DatasetFolder:
    """A course folder's `datasets/<slug>/`, its dataset.yaml read and checked."""

    path: Path
    meta: DatasetMeta
    source_markdown: str


def dataset_folder_read(*, path: Path) -> DatasetFolder:
    """Check `path/{dataset.yaml, train.csv, test.csv, SOURCE.md}` (and the optional
    dev.csv) before anything is written."""
    meta_path = path / "dataset.yaml"
    if not meta_path.is_file():
        raise CourseFolderError(path, "dataset.yaml is missing")
    meta = YamlSource.load(meta_path).validate(DatasetMeta)
    for name in ("train.csv", "test.csv", "SOURCE.md"):
        if not (path / name).is_file():
            raise CourseFolderError(path, f"{name} is missing")
    return DatasetFolder(path=path, meta=meta, source_markdown=read_text(path / "SOURCE.md"))


def dataset_folder_import(
    *, folder: DatasetFolder, course: Course | None = None, warnings: list[str] | None = None
) -> tuple[Dataset, str]:
    """Import a dataset folder's rows (see dataset_import); a bad CSV names its file and row."""
    path = folder.path
    dev = path / "dev.csv"
    try:
        parsed = parse_dataset(
            train=(path / "train.csv").read_bytes(),
            heldout=(path / "test.csv").read_bytes(),
            dev=dev.read_bytes() if dev.is_file() else None,
            train_name=str(path / "train.csv"),
            heldout_name=str(path / "test.csv"),
            dev_name=str(dev),
        )
    except DatasetError as exc:
        # The message already starts with the file's name.
        raise CourseFolderError(path, str(exc)) from None
    if warnings is not None:
        warnings.extend(parsed.warnings)
    try:
        return dataset_import(
            slug=folder.meta.slug,
            title=folder.meta.title,
            license_name=folder.meta.license,
            description=folder.meta.description,
            parsed=parsed,
            source_markdown=folder.source_markdown,
            course=course,
        )
    except DatasetError as exc:
        raise CourseFolderError(path / "dataset.yaml", str(exc), line=1) from None

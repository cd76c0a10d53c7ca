"""A whole course folder imported: the course's part, then its datasets and labs.

Everything is read and checked first (`course_folder_read`: no database); then
one transaction writes the course, stages, modules and checks
(`courses.services.course_import_spec`), the datasets in `datasets/` and every
lab module's `lab:` section. Any error names the file and line and changes nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction

from courses.authoring.parse import CourseSpec, ModuleSpec, parse_course_folder
from courses.authoring.source import CourseFolderError, YamlSource, read_text
from courses.authoring.unzip import unpacked_course_folder
from courses.models import Module
from courses.services import ImportReport, course_import_spec
from labs.authoring_schema import LAB_FIELD_PLACES, LAB_FILE_PLACES, LabSection
from labs.models import Dataset, Lab
from labs.services.datasets import DatasetFolder, dataset_folder_import, dataset_folder_read
from labs.services.submissions import MAX_CODE_BYTES


@dataclass(frozen=True)
class LabDraft:
    """A lab module's `lab:` section read with its code files, not yet checked against rows."""

    module_slug: str
    source: YamlSource
    section: LabSection
    starter_code: str
    reference_solution: str
    # As the Lab row keeps them: name, without, code.
    ablations: list[dict[str, str]]


@dataclass(frozen=True)
class CourseFolder:
    spec: CourseSpec
    datasets: list[DatasetFolder]
    labs: list[LabDraft]


def course_folder_read(*, path: Path | str) -> CourseFolder:
    """Read and check a whole course folder without touching the database."""
    spec = parse_course_folder(path)
    datasets_dir = spec.root / "datasets"
    folders = (
        sorted(p for p in datasets_dir.glob("*") if p.is_dir()) if datasets_dir.is_dir() else []
    )
    return CourseFolder(
        spec=spec,
        datasets=[dataset_folder_read(path=folder) for folder in folders],
        labs=[lab_read(module=m, root=spec.root) for m in spec.modules if m.lab is not None],
    )


def lab_read(*, module: ModuleSpec, root: Path) -> LabDraft:
    """A module's `lab:` section checked against the schema, with its code files read."""
    if module.lab is None:
        raise CourseFolderError(root / module.source_path, "the module has no 'lab:' section")
    source = module.lab
    section = source.validate(LabSection)
    code = {
        key: _code_file(
            source, root=root, name=getattr(section, key), place=(key,), what=f"lab {key}"
        )
        for key in ("starter", "solution")
    }
    ablations = [
        {
            "name": ablation.name,
            "without": ablation.without,
            "code": _code_file(
                source,
                root=root,
                name=ablation.file,
                place=("ablations", i, "file"),
                what="ablation",
            ),
        }
        for i, ablation in enumerate(section.ablations)
    ]
    return LabDraft(
        module_slug=module.slug,
        source=source,
        section=section,
        starter_code=code["starter"],
        reference_solution=code["solution"],
        ablations=ablations,
    )


def _code_file(
    source: YamlSource, *, root: Path, name: str, place: tuple[str | int, ...], what: str
) -> str:
    """A Python file next to the module, read and parsed (errors name its line).

    The code is shown to every learner on the lab page, so the path must stay inside the
    course folder: relative, no `..`, no link on the way (a link could point at any
    server file), and no larger than a learner's own submission may be."""
    relative = PurePosixPath(name)
    if relative.is_absolute() or "\\" in name or ".." in relative.parts or name.startswith("~"):
        raise source.error(
            place,
            f"{what} path '{name}' must be relative to the module's folder and stay inside "
            "the course folder (no leading '/', no '..')",
        )
    code_path = source.path.parent / relative
    here, linked = source.path.parent, False
    for part in relative.parts:
        here = here / part
        linked = linked or here.is_symlink()
    if linked or not code_path.resolve().is_relative_to(root.resolve()):
        raise source.error(
            place, f"{what} path '{name}' is a link or leaves the course folder; use a plain file"
        )
    if not code_path.is_file():
        raise source.error(place, f"{what} file {name} not found next to the module")
    if code_path.stat().st_size > MAX_CODE_BYTES:
        raise source.error(place, f"{what} file {name} is larger than {MAX_CODE_BYTES // 1024} KB")
    code = read_text(code_path)
    try:
        ast.parse(code)
    except SyntaxError as exc:
        raise CourseFolderError(code_path, f"syntax error: {exc.msg}", line=exc.lineno) from None
    except (RecursionError, MemoryError):
        raise CourseFolderError(code_path, "the code is nested too deeply to parse") from None
    return code


def course_folder_import(*, path: Path | str) -> ImportReport:
    """Create or update a course, its datasets and labs from its folder; idempotent,
    all or nothing."""
    return course_folder_write(folder=course_folder_read(path=path))


def course_folder_import_zip(*, upload: BinaryIO, name: str = "upload.zip") -> ImportReport:
    """The same, from a zipped course folder (the admin's upload)."""
    with unpacked_course_folder(upload=upload, name=name) as root:
        return course_folder_import(path=root)


@transaction.atomic
def course_folder_write(*, folder: CourseFolder) -> ImportReport:
    report = course_import_spec(spec=folder.spec)
    for dataset_folder in folder.datasets:
        dataset, outcome = dataset_folder_import(
            folder=dataset_folder, course=report.course, warnings=report.warnings
        )
        getattr(report, outcome).append(f"dataset {dataset.slug}")
    modules = {m.slug: m for m in Module.objects.filter(course=report.course)}
    for draft in folder.labs:
        _lab_write(report, module=modules[draft.module_slug], draft=draft)
    return report


def _lab_write(report: ImportReport, *, module: Module, draft: LabDraft) -> None:
    fields = lab_fields(draft=draft)
    lab, created = Lab.objects.get_or_create(module=module, defaults=fields)
    if created:
        report.created.append(f"lab {module.slug}")
    elif any(getattr(lab, name) != value for name, value in fields.items()):
        # update(): no save() side effects; course_import_spec's touch covers the page cache,
        # since this runs in the same transaction.
        Lab.objects.filter(pk=lab.pk).update(**fields)
        report.updated.append(f"lab {module.slug}")


def lab_fields(*, draft: LabDraft) -> dict[str, Any]:
    """The Lab row a section describes, checked by the model's own rules (Lab.clean)."""
    source = draft.source
    try:
        dataset = Dataset.objects.get(slug=draft.section.dataset)
    except Dataset.DoesNotExist:
        raise source.error(
            ("dataset",), f"lab dataset '{draft.section.dataset}' is not in datasets/"
        ) from None
    fields: dict[str, Any] = {
        "dataset": dataset,
        "starter_code": draft.starter_code,
        "reference_solution": draft.reference_solution,
        "ablations": draft.ablations,
        **draft.section.lab_values(),
    }
    lab = Lab(module=Module(), **fields)
    try:
        lab.clean_fields(exclude=["module"])
        lab.clean()
    except ValidationError as exc:
        messages = exc.message_dict
        first = next(iter(messages))
        places = {**LAB_FIELD_PLACES, **LAB_FILE_PLACES}
        raise source.error(
            places.get(first, ()), "; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
        ) from None
    return fields

"""Writes to the curriculum. Each function owns its transaction."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from courses.importer import CourseSpec, ModuleSpec, parse_course_folder
from courses.models import Course, Department, EmployeeProfile, Enrollment, Module, Stage
from courses.rendering import render_markdown


@dataclass
class ImportReport:
    course: Course
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Modules in the database but no longer in the folder are kept: deleting
    # them would delete learners' progress. They are listed so an author notices.
    not_in_folder: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        out = [f"Course '{self.course.slug}': {len(self.created)} created, "
               f"{len(self.updated)} updated, {len(self.unchanged)} unchanged."]  # fmt: skip
        out += [f"  + {name}" for name in self.created]
        out += [f"  ~ {name}" for name in self.updated]
        out += [
            f"  ! {name} is in the database but not in the folder (kept)"
            for name in self.not_in_folder
        ]
        return out


ImportExtension = Callable[[CourseSpec, Course, ImportReport], None]
_import_extensions: list[ImportExtension] = []


def register_import_extension(extension: ImportExtension) -> None:
    """Let an app built on courses import its own part of a course folder (labs: datasets, labs).

    Extensions run inside the import's transaction, after stages and modules,
    so any error they raise rolls the whole import back.
    """
    if extension not in _import_extensions:
        _import_extensions.append(extension)


def course_import(*, path: Path | str) -> ImportReport:
    """Create or update a course from its folder; idempotent, all or nothing."""
    spec = parse_course_folder(path)
    return course_import_spec(spec=spec)


@transaction.atomic
def course_import_spec(*, spec: CourseSpec) -> ImportReport:
    course, created = Course.objects.get_or_create(
        slug=spec.slug,
        defaults={"title": spec.title, "summary": spec.summary, "is_published": spec.published},
    )
    report = ImportReport(course=course)
    if created:
        report.created.append(f"course {spec.slug}")
    elif _assign(course, title=spec.title, summary=spec.summary, is_published=spec.published):
        course.save()
        report.updated.append(f"course {spec.slug}")

    existing_stages = {stage.slug: stage for stage in course.stages.all()}
    existing_modules = {module.slug: module for module in course.modules.all()}
    for stage_position, stage_spec in enumerate(spec.stages, start=1):
        stage = existing_stages.get(stage_spec.slug)
        fields = {
            "title": stage_spec.title,
            "summary": stage_spec.summary,
            "position": stage_position,
        }
        if stage is None:
            stage = Stage.objects.create(course=course, slug=stage_spec.slug, **fields)
            report.created.append(f"stage {stage.slug}")
        elif _assign(stage, **fields):
            stage.save()
            report.updated.append(f"stage {stage.slug}")
        for module_position, module_spec in enumerate(stage_spec.modules, start=1):
            _import_module(
                report, course=course, stage=stage, spec=module_spec, position=module_position,
                existing=existing_modules.pop(module_spec.slug, None),
            )  # fmt: skip
    report.not_in_folder = sorted(existing_modules)
    for extension in _import_extensions:
        extension(spec, course, report)
    return report


def _import_module(
    report: ImportReport,
    *,
    course: Course,
    stage: Stage,
    spec: ModuleSpec,
    position: int,
    existing: Module | None,
) -> None:
    fields = {
        "stage": stage,
        "title": spec.title,
        "kind": spec.kind,
        "required": spec.required,
        "estimated_minutes": spec.minutes,
        "summary": spec.summary,
        "position": position,
        "body_markdown": spec.body_markdown,
        "body_html": spec.body_html,
        "source_path": spec.source_path,
    }
    if existing is None:
        Module.objects.create(course=course, slug=spec.slug, **fields)
        report.created.append(f"module {spec.slug}")
    elif _assign(existing, **fields):
        existing.save()
        report.updated.append(f"module {spec.slug}")
    else:
        report.unchanged.append(f"module {spec.slug}")


def _assign(obj: object, **fields: object) -> bool:
    """Set fields that differ; return whether anything changed."""
    changed = False
    for name, value in fields.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def module_set_body(*, module: Module, body_markdown: str) -> Module:
    """Render and store a module's lesson (raises MarkdownError on bad Markdown/math)."""
    rendered = render_markdown(body_markdown)
    module.body_markdown = body_markdown
    module.body_html = rendered.html
    module.save(update_fields=["body_markdown", "body_html", "updated_at"])
    return module


def course_set_published(*, course: Course, published: bool) -> Course:
    course.is_published = published
    course.save(update_fields=["is_published", "updated_at"])
    return course


def enrollment_create(
    *,
    learner: AbstractBaseUser,
    course: Course,
    assigned_by: AbstractBaseUser | None = None,
    due_date: datetime.date | None = None,
) -> Enrollment:
    """Enroll a learner (idempotent). An assignment may set or move the due date."""
    enrollment, created = Enrollment.objects.get_or_create(
        learner=learner,
        course=course,
        defaults={"assigned_by": assigned_by, "due_date": due_date},
    )
    if not created and assigned_by is not None:
        enrollment.assigned_by = assigned_by
        enrollment.due_date = due_date
        enrollment.save(update_fields=["assigned_by", "due_date"])
    return enrollment


INSTRUCTOR_GROUP = "Instructor"
HR_GROUP = "HR"
ROLE_PERMISSIONS = {
    # Instructors author content and can look at (not edit) who is enrolled.
    INSTRUCTOR_GROUP: [
        ("courses", "course", ["add", "change", "delete", "view"]),
        ("courses", "stage", ["add", "change", "delete", "view"]),
        ("courses", "module", ["add", "change", "delete", "view"]),
        ("courses", "enrollment", ["view"]),
        ("grading", "moduleprogress", ["view"]),
        ("grading", "grade", ["view"]),
        ("labs", "dataset", ["add", "change", "view"]),
        ("labs", "lab", ["add", "change", "view"]),
        ("labs", "submission", ["view"]),
    ],
    # HR assigns courses and reads progress and reports (/reports/).
    HR_GROUP: [
        ("courses", "department", ["add", "change", "view"]),
        ("courses", "employeeprofile", ["add", "change", "view"]),
        ("courses", "enrollment", ["add", "change", "view"]),
        ("courses", "course", ["view"]),
        ("grading", "moduleprogress", ["view"]),
        ("grading", "departmentassignment", ["add", "change", "view"]),
        ("grading", "auditevent", ["view"]),
        ("grading", "remindersent", ["view"]),
        ("grading", "coursestaff", ["add", "change", "delete", "view"]),
    ],
}


@transaction.atomic
def roles_sync() -> None:
    """Create the Instructor and HR groups with exactly their permissions."""
    from django.contrib.auth.models import Group, Permission

    for group_name, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = [
            Permission.objects.get(content_type__app_label=app, codename=f"{action}_{model}")
            for app, model, actions in grants
            for action in actions
        ]
        group.permissions.set(permissions)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str


def demo_accounts_create(*, course_slugs: list[str]) -> list[DemoAccount]:
    """Create the demo learner, instructor and HR user once, with random passwords.

    Returns only the accounts created now, so the passwords are shown once.
    """
    import secrets

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    user_model = get_user_model()
    engineering, _ = Department.objects.get_or_create(
        slug="engineering", defaults={"name": "Engineering"}
    )
    support, _ = Department.objects.get_or_create(
        slug="customer-service", defaults={"name": "Customer Service"}
    )
    Department.objects.get_or_create(slug="finance", defaults={"name": "Finance"})
    people = [
        ("instructor", "Irene", "Instructor", INSTRUCTOR_GROUP, "E-0002", engineering, True),
        ("hr", "Hana", "Reyes", HR_GROUP, "E-0003", support, True),
        ("learner", "Lee", "Learner", None, "E-0001", engineering, False),
    ]
    created: list[DemoAccount] = []
    with transaction.atomic():
        for username, first, last, group, employee_id, department, is_staff in people:
            if user_model.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            user = user_model.objects.create_user(
                username=username, password=password, first_name=first, last_name=last,
                email=f"{username}@example.com", is_staff=is_staff,
            )  # fmt: skip
            if group:
                user.groups.add(Group.objects.get(name=group))
            EmployeeProfile.objects.create(
                user=user, employee_id=employee_id, department=department
            )
            created.append(
                DemoAccount(username=username, password=password, role=group or "Learner")
            )
        learner = user_model.objects.get(username="learner")
        manager = user_model.objects.filter(username="instructor").first()
        EmployeeProfile.objects.filter(user=learner, manager__isnull=True).update(manager=manager)
        hr = user_model.objects.filter(username="hr").first()
        already = set(learner.enrollments.values_list("course_id", flat=True))
        for course in Course.objects.filter(slug__in=course_slugs).exclude(pk__in=already):
            enrollment_create(
                learner=learner, course=course, assigned_by=hr,
                due_date=timezone.localdate() + datetime.timedelta(days=30),
            )  # fmt: skip
    return created

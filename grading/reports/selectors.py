"""HR reads: who may see which report, the filtered learner rows, summary numbers, chart data.

Every number is computed from `Enrollment` (assigned, due, completed) and
`ModuleProgress` (the one stored progress: knowledge checks and lab grades). The
queries do not depend on the data's size: the page runs the same fixed set
whatever the number of rows (pinned in tests/grading/test_reports_queries.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Avg,
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from academy.numbers import score_text
from courses.due_dates import overdue_q
from courses.models import Course, Department, Enrollment, Module
from courses.selectors import content_translate
from courses.services import HR_GROUP, INSTRUCTOR_GROUP
from grading.models import ApiToken, AuditEvent, CourseStaff, ModuleProgress
from grading.reports.services import token_hash
from grading.selectors import CourseProgress, ModuleState, course_progress

NOT_STARTED, IN_PROGRESS, COMPLETED, OVERDUE = "not_started", "in_progress", "completed", "overdue"
STATUS_LABELS = {
    NOT_STARTED: _("Not started"),
    IN_PROGRESS: _("In progress"),
    COMPLETED: _("Completed"),
    OVERDUE: _("Overdue"),
}
PAGE_SIZE = 50


# --------------------------------------------------------------------------
# Who may see what


@dataclass(frozen=True)
class ReportScope:
    """What one user may see: every course (HR), or only the courses they teach (instructor)."""

    user_id: int
    is_hr: bool
    course_ids: frozenset[int] | None  # None: every course

    def courses(self) -> QuerySet[Course]:
        courses = Course.objects.all()
        return courses if self.course_ids is None else courses.filter(pk__in=self.course_ids)


def _group_names(user: User) -> set[str]:
    # Cached on the user object so one request asks once.
    if not hasattr(user, "_academy_groups"):
        user._academy_groups = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    return user._academy_groups  # type: ignore[attr-defined]


def is_hr(user: User | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_superuser or HR_GROUP in _group_names(user))
    )


def _signed_in_id(user: User | AnonymousUser) -> int:
    if user.pk is None:  # an anonymous user never has a scope
        raise PermissionDenied(gettext("Sign in to see reports."))
    return user.pk


def report_scope(*, user: User | AnonymousUser) -> ReportScope:
    """The report this user may see, or PermissionDenied (learners and outsiders: 403)."""
    if is_hr(user):
        return ReportScope(user_id=_signed_in_id(user), is_hr=True, course_ids=None)
    if user.is_authenticated and user.is_active and INSTRUCTOR_GROUP in _group_names(user):
        taught = CourseStaff.objects.filter(user=user).values_list("course_id", flat=True)
        return ReportScope(user_id=_signed_in_id(user), is_hr=False, course_ids=frozenset(taught))
    raise PermissionDenied(
        gettext("Reports are for HR, and for instructors about their own courses.")
    )


def hr_scope(*, user: User | AnonymousUser) -> ReportScope:
    """Exports, the JSON API, assignments and transcripts are HR's alone."""
    if not is_hr(user):
        raise PermissionDenied(gettext("Only HR may use this page."))
    return ReportScope(user_id=_signed_in_id(user), is_hr=True, course_ids=None)


# --------------------------------------------------------------------------
# Filters (parsed and validated by grading.reports.forms.ReportFilterForm)


@dataclass(frozen=True)
class ReportFilters:
    course: str = ""  # slugs and a username, so a report URL reads plainly
    department: str = ""
    manager: str = ""
    status: str = ""
    date_field: str = "assigned"  # assigned | due | completed
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    sort: str = "due"
    page: int = 1


SORTS: dict[str, list[str]] = {
    "employee_id": ["learner__profile__employee_id"],
    "name": ["learner__last_name", "learner__first_name"],
    "department": ["learner__profile__department__name"],
    "manager": ["learner__profile__manager__last_name", "learner__profile__manager__first_name"],
    "course": ["course__title"],
    "assigned": ["enrolled_at"],
    "due": ["due_date"],
    "status": ["status"],
    "progress": ["percent"],
    "completed": ["completed_at"],
}
DATE_FIELDS = {"assigned": "enrolled_at", "due": "due_date", "completed": "completed_at"}


def _started(columns: Columns | None) -> Any:
    """True where the learner has any progress in the row's course."""
    if columns is None:
        started: Any = Exists(
            ModuleProgress.objects.filter(
                learner_id=OuterRef("learner_id"), module__course_id=OuterRef("course_id")
            )
        )
    else:
        # Per course, the module ids are known: the lookup stays on the (learner, module)
        # unique index without joining modules, which is what makes 100k rows fast.
        started = Q()
        for course_id, ids in columns.modules.items():
            started |= Q(course_id=course_id) & Q(
                Exists(
                    ModuleProgress.objects.filter(
                        learner_id=OuterRef("learner_id"), module_id__in=ids
                    )
                )
            )
    return started


def _status_expression(today: datetime.date, columns: Columns | None = None) -> Case:
    started = _started(columns)
    whens = [
        When(completed_at__isnull=False, then=Value(COMPLETED)),
        When(overdue_q(today), then=Value(OVERDUE)),
    ]
    if started:  # an empty Q: no module in scope, so nobody can have started
        whens.append(When(started, then=Value(IN_PROGRESS)))
    return Case(*whens, default=Value(NOT_STARTED))


def enrollments_filtered(
    *,
    scope: ReportScope,
    filters: ReportFilters,
    columns: Columns | None = None,
    today: datetime.date | None = None,
) -> QuerySet[Enrollment]:
    """The enrollments the filters select, without annotations (so aggregates group cleanly)."""
    today = today or timezone.localdate()
    qs = Enrollment.objects.all()
    if scope.course_ids is not None:
        qs = qs.filter(course_id__in=scope.course_ids)
    if filters.course:
        qs = qs.filter(course__slug=filters.course)
    if filters.department:
        qs = qs.filter(learner__profile__department__slug=filters.department)
    if filters.manager:
        qs = qs.filter(learner__profile__manager__username=filters.manager)
    if filters.status:
        qs = qs.alias(status=_status_expression(today, columns)).filter(status=filters.status)
    # Timestamps compare by their local date; the due date is a date already.
    column = DATE_FIELDS[filters.date_field]
    lookup = column if column == "due_date" else f"{column}__date"
    if filters.date_from:
        qs = qs.filter(**{f"{lookup}__gte": filters.date_from})
    if filters.date_to:
        qs = qs.filter(**{f"{lookup}__lte": filters.date_to})
    return qs


@dataclass(frozen=True)
class LabColumn:
    module_id: int
    course_id: int
    course_slug: str
    slug: str
    title: str

    @property
    def key(self) -> str:
        return f"lab_{self.module_id}"

    @property
    def header(self) -> str:
        return f"lab:{self.course_slug}/{self.slug}"


@dataclass(frozen=True)
class Columns:
    """What the rows need to know about the courses: their labs and required-module counts."""

    labs: list[LabColumn]
    modules: dict[int, list[int]]  # course id → its module ids
    required_modules: dict[int, list[int]]  # course id → its required module ids

    @property
    def required(self) -> dict[int, int]:
        return {course: len(ids) for course, ids in self.required_modules.items()}


def report_columns(*, scope: ReportScope, filters: ReportFilters) -> Columns:
    """One column per lab of the courses the report can show, in course order, and each
    course's required-module count (one query, so rows need no subquery for it)."""
    modules = Module.objects.all()
    if scope.course_ids is not None:
        modules = modules.filter(course_id__in=scope.course_ids)
    if filters.course:
        modules = modules.filter(course__slug=filters.course)
    modules = modules.order_by("course__title", "course_id", "stage__position", "position", "id")
    labs: list[LabColumn] = []
    all_ids: dict[int, list[int]] = {}
    required: dict[int, list[int]] = {}
    for m in modules.values("id", "course_id", "course__slug", "slug", "title", "kind", "required"):
        all_ids.setdefault(m["course_id"], []).append(m["id"])
        required.setdefault(m["course_id"], [])
        if m["required"]:
            required[m["course_id"]].append(m["id"])
        if m["kind"] == Module.Kind.LAB:
            labs.append(
                LabColumn(
                    module_id=m["id"],
                    course_id=m["course_id"],
                    course_slug=m["course__slug"],
                    slug=m["slug"],
                    title=m["title"],
                )
            )
    return Columns(labs=labs, modules=all_ids, required_modules=required)


def report_rows(
    *,
    base: QuerySet[Enrollment],
    columns: Columns,
    sort: str,
    today: datetime.date | None = None,
) -> QuerySet[Enrollment]:
    """The learner table's rows as dicts: a fixed set of correlated subqueries per row
    (status, progress, each lab's best score), each an index lookup on ModuleProgress."""
    today = today or timezone.localdate()
    # COUNT(*) as a plain scalar subquery (no GROUP BY), one per course with its module ids.
    done = Case(
        *(
            When(
                course_id=course_id,
                then=Subquery(
                    ModuleProgress.objects.filter(
                        learner_id=OuterRef("learner_id"),
                        module_id__in=ids,
                        status=ModuleProgress.Status.COMPLETED,
                    )
                    .order_by()
                    .annotate(n=Func(Value(1), function="COUNT"))
                    .values("n")[:1],
                    output_field=IntegerField(),
                ),
            )
            for course_id, ids in columns.required_modules.items()
            if ids
        ),
        default=Value(0),
        output_field=IntegerField(),
    )
    labs = columns.labs
    # Constant per course: a CASE on the course id instead of a subquery per row.
    required = Case(
        *(When(course_id=pk, then=Value(n)) for pk, n in columns.required.items()),
        default=Value(0),
        output_field=IntegerField(),
    )
    lab_scores = {
        lab.key: Case(
            When(
                course_id=lab.course_id,
                then=Subquery(
                    ModuleProgress.objects.filter(
                        learner_id=OuterRef("learner_id"), module_id=lab.module_id
                    ).values("best_score")[:1]
                ),
            ),
            default=Value(None),
            output_field=FloatField(),
        )
        for lab in labs
    }
    qs = base.annotate(
        # Dates computed by the database in the current time zone: parsing 100,000
        # timestamps in Python costs more than the rest of the row.
        assigned_on=TruncDate("enrolled_at"),
        completed_on=TruncDate("completed_at"),
        status=_status_expression(today, columns),
        modules_done=Coalesce(done, 0),
        modules_required=required,
        **lab_scores,
    )
    if sort.lstrip("-") == "progress":
        # Only when sorting by it: F() inlines the subquery, so it would run twice per row.
        qs = qs.alias(
            percent=ExpressionWrapper(
                F("modules_done") * 100.0 / NullIf(F("modules_required"), 0),
                output_field=FloatField(),
            )
        )
    descending = sort.startswith("-")
    fields = SORTS[sort.lstrip("-")]
    order = [
        F(f).desc(nulls_last=True) if descending else F(f).asc(nulls_last=True) for f in fields
    ]
    return qs.order_by(*order, "-pk" if descending else "pk").values(
        "pk",
        "learner_id",
        "course_id",
        "assigned_on",
        "due_date",
        "completed_on",
        "status",
        "modules_done",
        "modules_required",
        "learner__username",
        "learner__first_name",
        "learner__last_name",
        "learner__email",
        "learner__profile__employee_id",
        "learner__profile__department__name",
        "learner__profile__manager__username",
        "learner__profile__manager__first_name",
        "learner__profile__manager__last_name",
        "course__slug",
        "course__title",
        *lab_scores,
    )


def report_page(
    *,
    base: QuerySet[Enrollment],
    columns: Columns,
    sort: str,
    offset: int,
    limit: int,
    today: datetime.date | None = None,
) -> list[Row]:
    """One page of the table in two queries: the page's ids in sort order, then their rows.

    Asking for the rows directly would make SQLite compute every row's subqueries before
    sorting, to keep 50 of them; the ids alone sort on the sort key only.
    """
    ordered = report_rows(base=base, columns=columns, sort=sort, today=today)
    ids = list(ordered.values_list("pk", flat=True)[offset : offset + limit])
    values = report_rows(
        base=Enrollment.objects.filter(pk__in=ids), columns=columns, sort=sort, today=today
    )
    by_id = {row.enrollment_id: row for row in rows_from_values(values, columns.labs)}
    return [by_id[pk] for pk in ids if pk in by_id]


@dataclass
class Row:
    """One learner-course line of the table, the CSV and the JSON."""

    enrollment_id: int
    learner_id: int
    employee_id: str
    username: str
    name: str
    email: str
    department: str
    manager: str
    course_slug: str
    course_title: str
    assigned: datetime.date
    due: datetime.date | None
    status: str
    progress: int
    modules_done: int
    modules_required: int
    completed: datetime.date | None
    lab_scores: list[float | None]

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])


def _full_name(first: str | None, last: str | None, username: str | None) -> str:
    return " ".join(part for part in (first, last) if part) or (username or "")


def rows_from_values(values: Any, labs: list[LabColumn]) -> Iterator[Row]:
    keys = [lab.key for lab in labs]

    for v in values:
        yield Row(
            enrollment_id=v["pk"],
            learner_id=v["learner_id"],
            employee_id=v["learner__profile__employee_id"] or "",
            username=v["learner__username"],
            name=_full_name(
                v["learner__first_name"], v["learner__last_name"], v["learner__username"]
            ),
            email=v["learner__email"] or "",
            department=v["learner__profile__department__name"] or "",
            manager=_full_name(
                v["learner__profile__manager__first_name"],
                v["learner__profile__manager__last_name"],
                v["learner__profile__manager__username"],
            ),
            course_slug=v["course__slug"],
            course_title=v["course__title"],
            assigned=v["assigned_on"],
            due=v["due_date"],
            status=v["status"],
            progress=100
            if v["completed_on"]
            else (
                round(100 * v["modules_done"] / v["modules_required"])
                if v["modules_required"]
                else 0
            ),
            modules_done=v["modules_done"],
            modules_required=v["modules_required"],
            completed=v["completed_on"],
            lab_scores=[v[key] for key in keys],
        )


# --------------------------------------------------------------------------
# Summary cards and charts


@dataclass
class Summary:
    assigned: int
    completed: int
    overdue: int
    in_progress: int
    not_started: int
    median_days: float | None
    average_lab_score: float | None

    @property
    def completion_rate(self) -> int | None:
        return round(100 * self.completed / self.assigned) if self.assigned else None


def report_summary(
    *,
    base: QuerySet[Enrollment],
    columns: Columns | None = None,
    today: datetime.date | None = None,
) -> Summary:
    """Three queries: the counts, the median's middle row(s), the lab average."""
    today = today or timezone.localdate()
    open_ = Q(completed_at__isnull=True)
    started = _started(columns)
    aggregates = {
        "assigned": Count("pk"),
        "completed": Count("pk", filter=Q(completed_at__isnull=False)),
        "overdue": Count("pk", filter=overdue_q(today)),
    }
    if started:  # the same rule as the status column, with the progress lookup written once
        started_q = started if isinstance(started, Q) else Q(started)
        aggregates["in_progress"] = Count("pk", filter=open_ & ~overdue_q(today) & started_q)
    counts = {"in_progress": 0, **base.aggregate(**aggregates)}
    median = None
    if counts["completed"]:
        n = counts["completed"]
        durations = list(
            base.filter(completed_at__isnull=False)
            .annotate(
                took=ExpressionWrapper(
                    F("completed_at") - F("enrolled_at"), output_field=DurationField()
                )
            )
            .order_by("took")
            .values_list("took", flat=True)[(n - 1) // 2 : n // 2 + 1]
        )
        if durations:
            median = sum(d.total_seconds() for d in durations) / len(durations) / 86400
    lab_average = _lab_average(base, columns)
    return Summary(
        assigned=counts["assigned"],
        completed=counts["completed"],
        overdue=counts["overdue"],
        in_progress=counts["in_progress"],
        not_started=counts["assigned"]
        - counts["completed"]
        - counts["overdue"]
        - counts["in_progress"],
        median_days=median,
        average_lab_score=lab_average,
    )


def _lab_average(base: QuerySet[Enrollment], columns: Columns | None) -> float | None:
    """The mean best score over the selected enrollments' labs."""
    scored = ModuleProgress.objects.filter(best_score__isnull=False)
    if columns is None:
        in_selection = Exists(
            base.filter(learner_id=OuterRef("learner_id"), course_id=OuterRef("module__course_id"))
        )
        scored = scored.filter(in_selection, module__kind=Module.Kind.LAB)
    else:
        # Lab ids per course are known: no join to modules, one (learner, course) lookup.
        by_course: dict[int, list[int]] = {}
        for lab in columns.labs:
            by_course.setdefault(lab.course_id, []).append(lab.module_id)
        if not by_course:
            return None
        condition = Q()
        for course_id, ids in by_course.items():
            condition |= Q(module_id__in=ids) & Q(
                Exists(base.filter(learner_id=OuterRef("learner_id"), course_id=course_id))
            )
        scored = scored.filter(condition)
    return scored.aggregate(avg=Avg("best_score"))["avg"]


@dataclass
class DepartmentBar:
    name: str
    assigned: int
    completed: int
    overdue: int

    @property
    def rate(self) -> int:
        return round(100 * self.completed / self.assigned) if self.assigned else 0


def department_completion(
    *, base: QuerySet[Enrollment], today: datetime.date | None = None
) -> list[DepartmentBar]:
    today = today or timezone.localdate()
    rows = (
        base.values("learner__profile__department__name")
        .annotate(
            assigned=Count("pk"),
            completed=Count("pk", filter=Q(completed_at__isnull=False)),
            overdue=Count("pk", filter=overdue_q(today)),
        )
        .order_by("learner__profile__department__name")
    )
    return [
        DepartmentBar(
            name=r["learner__profile__department__name"] or gettext("No department"),
            assigned=r["assigned"],
            completed=r["completed"],
            overdue=r["overdue"],
        )
        for r in rows
    ]


@dataclass
class Bucket:
    start: datetime.date
    label: str
    completed: int


def completions_over_time(*, base: QuerySet[Enrollment]) -> list[Bucket]:
    """Completions per week (per month beyond half a year), empty periods included."""
    per_day = (
        base.filter(completed_at__isnull=False)
        .annotate(day=TruncDate("completed_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by("day")
    )
    days = {r["day"]: r["n"] for r in per_day}
    if not days:
        return []
    first, last = min(days), max(days)
    monthly = (last - first).days > 183
    buckets: dict[datetime.date, int] = {}

    def bucket_start(day: datetime.date) -> datetime.date:
        return day.replace(day=1) if monthly else day - datetime.timedelta(days=day.weekday())

    cursor = bucket_start(first)
    while cursor <= last:
        buckets[cursor] = 0
        cursor = (
            (cursor.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
            if monthly
            else cursor + datetime.timedelta(days=7)
        )
    for day, n in days.items():
        buckets[bucket_start(day)] += n
    return [
        Bucket(
            start=s,
            label=(
                date_format(s, gettext("M Y"))
                if monthly
                else gettext("wk %(date)s") % {"date": date_format(s, gettext("d M"))}
            ),
            completed=n,
        )
        for s, n in buckets.items()
    ]


# --------------------------------------------------------------------------
# Filter choices


def filter_choices(*, scope: ReportScope) -> dict[str, list[tuple[str, str]]]:
    """Options of the filter form: three queries (courses, departments, managers)."""
    from courses.models import EmployeeProfile

    courses = [(c.slug, c.title) for c in scope.courses().only("slug", "title").order_by("title")]
    departments = [(d.slug, d.name) for d in Department.objects.order_by("name")]
    managers = (
        EmployeeProfile.objects.filter(manager__isnull=False)
        .values("manager_id", "manager__username", "manager__first_name", "manager__last_name")
        .distinct()
        .order_by("manager__last_name", "manager__first_name", "manager_id")
    )
    return {
        "course": courses,
        "department": departments,
        "manager": [
            (
                m["manager__username"],
                _full_name(
                    m["manager__first_name"], m["manager__last_name"], m["manager__username"]
                ),
            )
            for m in managers
        ],
    }


# --------------------------------------------------------------------------
# Transcripts

# The audit trail printed on a transcript: the latest events, enough for any one person.
TRANSCRIPT_EVENTS = 200


def learner_get_for(*, reader: User, learner_id: int) -> User:
    """The learner whose record `reader` may read (HR: anyone; a learner: themself), else
    PermissionDenied (403) or, for an unknown id, 404."""
    if reader.pk != learner_id and not is_hr(reader):
        raise PermissionDenied(gettext("Only HR may read another person's record."))
    return get_object_or_404(get_user_model().objects.select_related("profile"), pk=learner_id)


@dataclass(frozen=True)
class TranscriptModule:
    state: ModuleState
    row: ModuleProgress | None  # None: never opened


@dataclass(frozen=True)
class TranscriptCourse:
    enrollment: Enrollment
    progress: CourseProgress
    modules: list[TranscriptModule]


def transcript_courses(
    *, learner: User, include_unpublished: bool = True
) -> list[TranscriptCourse]:
    """Every course the learner is enrolled in, by title, with each module's state and
    stored progress row (for its completion date). Three queries a course, plus two.

    Without `include_unpublished`, a course not yet published (its titles and modules
    are a draft) is left out, as it is everywhere else a learner looks."""
    rows = {
        p.module_id: p
        for p in ModuleProgress.objects.filter(learner=learner).select_related("best_submission")
    }
    enrollments = (
        Enrollment.objects.filter(learner=learner)
        .select_related("course", "assigned_by")
        .order_by("course__title")
    )
    if not include_unpublished:
        enrollments = enrollments.filter(course__is_published=True)
    courses = []
    for enrollment in enrollments:
        progress = course_progress(learner=learner, course=enrollment.course)
        modules = [TranscriptModule(state=s, row=rows.get(s.module.pk)) for s in progress.modules]
        courses.append(TranscriptCourse(enrollment=enrollment, progress=progress, modules=modules))
    # In the reader's language, as the learner pages are (one look-up for the whole record).
    content_translate(
        courses=[c.enrollment.course for c in courses],
        stages=[m.state.module.stage for c in courses for m in c.modules],
        modules=[m.state.module for c in courses for m in c.modules],
    )
    return courses


def transcript_events(*, learner: User, include_unpublished: bool = True) -> list[AuditEvent]:
    """The learner's audit trail, newest first; without `include_unpublished`, events about a
    course not yet published are left out, as the course itself is (its title is one)."""
    events = AuditEvent.objects.filter(learner=learner)
    if not include_unpublished:
        events = events.exclude(course__is_published=False)
    rows = list(events.select_related("actor", "course")[:TRANSCRIPT_EVENTS])
    content_translate(courses=[e.course for e in rows if e.course is not None])
    for event in rows:
        event.sentence = audit_sentence(event)  # type: ignore[attr-defined]
    return rows


def _passed_word(passed: object) -> str:
    return gettext("passed") if passed else gettext("not passed")


def audit_sentence(event: AuditEvent) -> str:
    """An audit event's details as a sentence: "Score changed from 54.4 to 60.1; not passed
    → passed", "Re-graded: unchanged, 54.4", "Due date moved from 2026-01-05 to 2026-02-01"."""
    d = event.detail or {}
    none = gettext("none")
    via = (
        gettext(" (via the department %(department)s)") % {"department": d["via_department"]}
        if d.get("via_department")
        else ""
    )
    if event.action == AuditEvent.Action.REGRADED:
        before, after = d.get("from_score"), d.get("to_score")
        if score_text(before) == score_text(after) and d.get("from_passed") == d.get("to_passed"):
            return gettext("Re-graded: unchanged, %(score)s (%(passed)s).") % {
                "score": score_text(after),
                "passed": _passed_word(d.get("to_passed")),
            }
        return gettext("Score changed from %(before)s to %(after)s; %(was)s → %(now)s.") % {
            "before": score_text(before),
            "after": score_text(after),
            "was": _passed_word(d.get("from_passed")),
            "now": _passed_word(d.get("to_passed")),
        }
    if "from" in d and "to" in d:
        return gettext("Due date moved from %(was)s to %(now)s%(via)s.") % {
            "was": d["from"] or none,
            "now": d["to"] or none,
            "via": via,
        }
    if "due_date" in d:
        moved = gettext(" (was %(was)s)") % {"was": d["from"] or none} if d.get("from") else ""
        already = gettext("; they had enrolled themselves") if d.get("was_self_enrolled") else ""
        if d["due_date"]:
            return gettext("Due %(date)s%(moved)s%(via)s%(already)s.") % {
                "date": d["due_date"],
                "moved": moved,
                "via": via,
                "already": already,
            }
        return gettext("Due with no date%(moved)s%(via)s%(already)s.") % {
            "moved": moved,
            "via": via,
            "already": already,
        }
    return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in d.items()) or "—"


# --------------------------------------------------------------------------
# Machine tokens


def api_token_get(*, secret: str) -> ApiToken | None:
    """The live token with this secret, if its owner may still sign in; else None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(secret), revoked_at__isnull=True)
        .first()
    )
    return token if token is not None and token.user.is_active else None

"""HR pages: the report (htmx-filtered, bookmarkable), CSV/JSON exports, transcripts, assigning."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from academy.http import SignedInRequest
from academy.refusals import Refusal
from grading.reports import charts, exports
from grading.reports.directory import (
    MAX_BYTES,
    DirectoryRefused,
    employee_import_preview,
)
from grading.reports.directory import (
    employee_import_confirm as directory_confirm,
)
from grading.reports.forms import (
    AssignmentForm,
    EmployeeImportConfirmForm,
    EmployeeImportForm,
    ReportFilterForm,
)
from grading.reports.selectors import (
    PAGE_SIZE,
    ReportFilters,
    ReportScope,
    api_token_get,
    completions_over_time,
    department_completion,
    enrollments_filtered,
    filter_choices,
    hr_scope,
    is_hr,
    learner_get_for,
    report_columns,
    report_page,
    report_rows,
    report_scope,
    report_summary,
    rows_from_values,
    transcript_courses,
    transcript_events,
)
from grading.reports.services import api_token_mark_used, assignment_create

TABLE_COLUMNS = [
    ("employee_id", _("Employee id")),
    ("name", _("Name")),
    ("department", _("Department")),
    ("manager", _("Manager")),
    ("course", _("Course")),
    ("assigned", _("Assigned")),
    ("due", _("Due")),
    ("status", _("Status")),
    ("progress", _("Progress")),
    ("completed", _("Completed")),
]


def _query(request: HttpRequest, **changes: str | None) -> str:
    """The current query string with some keys changed (None removes a key)."""
    params = request.GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value:
            params[key] = value
    for key in [k for k, v in params.items() if v == ""]:
        params.pop(key)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


def _report_context(
    request: HttpRequest, scope: ReportScope, filters: ReportFilters
) -> dict[str, Any]:
    today = timezone.localdate()
    columns = report_columns(scope=scope, filters=filters)
    base = enrollments_filtered(scope=scope, filters=filters, columns=columns, today=today)
    summary = report_summary(base=base, columns=columns, today=today)
    pages = max(1, -(-summary.assigned // PAGE_SIZE))
    page = min(filters.page, pages)
    labs = columns.labs
    rows = report_page(
        base=base,
        columns=columns,
        sort=filters.sort,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        today=today,
    )
    per_course_labs = bool(filters.course) or len({lab.course_id for lab in labs}) <= 1
    table = [
        (
            row,
            [
                (lab, score)
                for lab, score in zip(labs, row.lab_scores, strict=True)
                if per_course_labs or lab.course_slug == row.course_slug
            ],
        )
        for row in rows
    ]
    departments = department_completion(base=base, today=today)
    timeline = completions_over_time(base=base)
    current = filters.sort.lstrip("-")
    headers = [
        {
            "key": key,
            "label": label,
            "sorted": "descending"
            if filters.sort == f"-{key}"
            else "ascending"
            if current == key
            else "none",
            "href": _query(request, sort=f"-{key}" if filters.sort == key else key, page=None),
        }
        for key, label in TABLE_COLUMNS
    ]
    export_query = _query(request, page=None)
    return {
        "summary": summary,
        "table": table,
        "labs": labs if per_course_labs else [],
        "headers": headers,
        "department_bars": departments,
        "department_svg": charts.department_chart(departments),
        "timeline": timeline,
        "timeline_svg": charts.timeline_chart(timeline),
        "page": page,
        "pages": pages,
        "previous_href": _query(request, page=str(page - 1)) if page > 1 else None,
        "next_href": _query(request, page=str(page + 1)) if page < pages else None,
        "first_row": (page - 1) * PAGE_SIZE + 1 if rows else 0,
        "last_row": (page - 1) * PAGE_SIZE + len(rows),
        "csv_href": reverse("reports:export-csv") + export_query,
        "json_href": reverse("reports:export-json") + export_query,
        "sort": filters.sort,
        "today": today,
    }


@never_cache  # HR's data: no browser or proxy may keep a copy (as for every view here)
@login_required
@require_GET
@vary_on_headers("HX-Request")
def report(request: SignedInRequest) -> HttpResponse:
    scope = report_scope(user=request.user)
    form = ReportFilterForm(request.GET, choices=filter_choices(scope=scope))
    context: dict[str, Any] = {"form": form, "scope": scope, "errors": []}
    status = 200
    if form.is_valid():
        context.update(_report_context(request, scope, form.filters()))
    else:
        context["errors"] = form.error_lines()
        status = 400
    template = "grading/reports.html#report-body" if request.htmx else "grading/reports.html"
    return render(request, template, context, status=status)


# --------------------------------------------------------------------------
# Exports: a browser session or `Authorization: Bearer <token>` for machines


class NotAuthenticated(Refusal):
    """Neither a session nor a usable token: the export cannot tell who is asking."""

    status = 401


def _export_user(request: HttpRequest) -> User:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _space, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated(str(_("Use the header “Authorization: Bearer <token>”.")))
        token = api_token_get(secret=secret.strip())
        if token is None:
            raise NotAuthenticated(
                str(_("This token is unknown, revoked, or its owner is inactive."))
            )
        api_token_mark_used(token=token)
        return token.user
    if request.user.is_authenticated:
        return request.user
    raise NotAuthenticated(str(_("Sign in, or send “Authorization: Bearer <token>”.")))


def _filters_only(request: HttpRequest) -> str:
    """The export's path with only its filters: a token pasted into the query string
    (`?token=…`) must not travel on into the sign-in page's `next=` and its logs."""
    kept = [
        (key, value)
        for key in request.GET
        if key in ReportFilterForm.base_fields
        for value in request.GET.getlist(key)
    ]
    return request.path + (f"?{urlencode(kept)}" if kept else "")


def _export_filters(request: HttpRequest) -> tuple[ReportScope, ReportFilters | HttpResponse]:
    user = _export_user(request)
    scope = hr_scope(user=user)
    form = ReportFilterForm(request.GET, choices=filter_choices(scope=scope))
    if not form.is_valid():
        return scope, HttpResponseBadRequest(
            _("Bad filter: %(errors)s") % {"errors": " ".join(form.error_lines())},
            content_type="text/plain; charset=utf-8",
        )
    return scope, form.filters()


def _export_rows(scope: ReportScope, filters: ReportFilters) -> tuple[Any, list[Any]]:
    columns = report_columns(scope=scope, filters=filters)
    base = enrollments_filtered(scope=scope, filters=filters, columns=columns)
    values = report_rows(base=base, columns=columns, sort=filters.sort)
    return rows_from_values(values.iterator(chunk_size=exports.CHUNK), columns.labs), columns.labs


@never_cache
@require_GET
def export_csv(request: HttpRequest) -> HttpResponseBase:
    try:
        scope, filters = _export_filters(request)
    except NotAuthenticated as exc:
        if "Authorization" not in request.headers:
            return redirect_to_login(_filters_only(request))
        return HttpResponse(
            exc.message, status=exc.status, content_type="text/plain; charset=utf-8"
        )
    except PermissionDenied as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain; charset=utf-8")
    if isinstance(filters, HttpResponse):
        return filters
    rows, labs = _export_rows(scope, filters)
    response = StreamingHttpResponse(
        exports.csv_stream(rows, labs), content_type="text/csv; charset=utf-8"
    )
    name = f"academy-report-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@never_cache
@require_GET
def export_json(request: HttpRequest) -> HttpResponseBase:
    try:
        scope, filters = _export_filters(request)
    except NotAuthenticated as exc:
        response = JsonResponse({"error": exc.message}, status=exc.status)
        response["WWW-Authenticate"] = 'Bearer realm="academy-reports"'
        return response
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    if isinstance(filters, HttpResponse):
        return JsonResponse({"error": filters.content.decode()}, status=400)
    rows, labs = _export_rows(scope, filters)
    meta = {"generated_at": timezone.now().isoformat(), "filters": request.GET.dict()}
    download = StreamingHttpResponse(
        exports.json_stream(rows, labs, meta), content_type="application/json"
    )
    # A browser saves it rather than opening raw JSON in the tab; API clients ignore it.
    name = f"academy-report-{timezone.localdate():%Y-%m-%d}.json"
    download["Content-Disposition"] = f'attachment; filename="{name}"'
    return download


# --------------------------------------------------------------------------
# Transcript and assigning


@never_cache
@login_required
@require_GET
def transcript(request: SignedInRequest, learner_id: int) -> HttpResponse:
    learner = learner_get_for(reader=request.user, learner_id=learner_id)
    context = {
        "learner": learner,
        "profile": getattr(learner, "profile", None),
        # A learner's own record lists only published courses; HR sees what was assigned.
        "courses": transcript_courses(learner=learner, include_unpublished=is_hr(request.user)),
        "events": transcript_events(learner=learner, include_unpublished=is_hr(request.user)),
        "printed_on": timezone.localdate(),
        "today": timezone.localdate(),
    }
    return render(request, "grading/transcript.html", context)


@never_cache
@login_required
def assign(request: SignedInRequest) -> HttpResponse:
    hr_scope(user=request.user)
    form = AssignmentForm(
        request.POST or None,
        initial={
            "due_date": timezone.localdate() + datetime.timedelta(days=30),
            "course": request.GET.get("course"),
            "departments": request.GET.getlist("departments"),
            "people": request.GET.get("people", ""),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        result = assignment_create(
            course=data["course"],
            due_date=data["due_date"],
            actor=request.user,
            learners=data["people"],
            departments=data["departments"],
        )
        messages.success(request, result.message(data["course"]))
        return redirect(reverse("reports:report") + f"?course={data['course'].slug}")
    return render(
        request, "grading/reports_assign.html", {"form": form}, status=400 if form.errors else 200
    )


# --------------------------------------------------------------------------
# Employee directory import: upload → preview → confirm


PREVIEW_LIST = 200  # names listed per kind of change; the counts are always complete


@never_cache
@login_required
def employee_import(request: SignedInRequest) -> HttpResponse:
    hr_scope(user=request.user)
    form = EmployeeImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"form": form, "errors": [], "max_mb": MAX_BYTES // 1024 // 1024}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        # One byte past the limit is enough to know it is too large, without reading it all.
        data = upload.read(MAX_BYTES + 1)
        try:
            stored, plan = employee_import_preview(
                data=data, filename=upload.name, actor=request.user
            )
        except DirectoryRefused as exc:
            context["errors"] = exc.errors
            return render(request, "grading/reports_import.html", context, status=400)
        context.update(
            {
                "plan": plan,
                "upload": stored,
                "confirm": EmployeeImportConfirmForm(
                    initial={"upload": stored.pk, "sha256": stored.sha256}
                ),
                "created": plan.created[:PREVIEW_LIST],
                "updated": plan.updated[:PREVIEW_LIST],
                "list_limit": PREVIEW_LIST,
            }
        )
    status = 400 if form.errors else 200
    return render(request, "grading/reports_import.html", context, status=status)


@never_cache
@login_required
@require_POST
def employee_import_confirm(request: SignedInRequest) -> HttpResponse:
    hr_scope(user=request.user)
    form = EmployeeImportConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("That confirmation is not a preview of this page; upload the file again.")
        )
        return redirect("reports:employee-import")
    try:
        plan = directory_confirm(
            upload_id=form.cleaned_data["upload"],
            sha256=form.cleaned_data["sha256"],
            actor=request.user,
        )
    except DirectoryRefused as exc:
        messages.error(request, exc.message)
        return redirect("reports:employee-import")
    messages.success(request, _("Imported: %(summary)s") % {"summary": plan.summary()})
    return redirect("reports:employee-import")

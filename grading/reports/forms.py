"""Forms of the HR pages: the report filters (from the query string) and the assignment form."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from courses.models import Course, Department
from grading.reports.selectors import SORTS, STATUS_LABELS, ReportFilters

MAX_PAGE = 1_000_000


class ReportFilterForm(forms.Form):
    """Parses the report's query string; every bad value gets a message, never a 500."""

    course = forms.ChoiceField(required=False, label=_("Course"))
    department = forms.ChoiceField(required=False, label=_("Department"))
    manager = forms.ChoiceField(required=False, label=_("Manager"))
    status = forms.ChoiceField(
        required=False, label=_("Status"), choices=[("", _("Any status")), *STATUS_LABELS.items()]
    )
    dates = forms.ChoiceField(
        required=False,
        label=_("Dates apply to"),
        choices=[("assigned", _("Assigned")), ("due", _("Due")), ("completed", _("Completed"))],
    )
    date_from = forms.DateField(
        required=False,
        label=_("From"),
        input_formats=["%Y-%m-%d"],  # ISO only: a bookmarked URL means the same everywhere
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        required=False,
        label=_("To"),
        input_formats=["%Y-%m-%d"],  # ISO only: a bookmarked URL means the same everywhere
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    sort = forms.ChoiceField(
        required=False,
        label=_("Sort"),
        widget=forms.HiddenInput,
        choices=[(s, s) for name in SORTS for s in (name, f"-{name}")],
    )
    page = forms.IntegerField(
        required=False, label=_("Page"), min_value=1, max_value=MAX_PAGE, widget=forms.HiddenInput
    )

    def __init__(self, data: Any, *, choices: dict[str, list[tuple[str, str]]]) -> None:
        super().__init__(data)
        # Declared as ChoiceFields above; `fields` is typed as holding any field.
        for name, everything in (
            ("course", _("All courses")),
            ("department", _("All departments")),
            ("manager", _("Any manager")),
        ):
            field = cast(forms.ChoiceField, self.fields[name])
            field.choices = [("", everything), *choices[name]]
        self.fields["course"].error_messages["invalid_choice"] = _(
            "Unknown course “%(value)s” (or not one of yours)."
        )
        self.fields["department"].error_messages["invalid_choice"] = _(
            "Unknown department “%(value)s”."
        )
        self.fields["manager"].error_messages["invalid_choice"] = _(
            "“%(value)s” is not anyone's manager."
        )
        self.fields["status"].error_messages["invalid_choice"] = _(
            "Unknown status “%(value)s”: use not_started, in_progress, completed or overdue."
        )
        # %(value)s stays for the form to fill; the sort names are put in here.
        self.fields["sort"].error_messages["invalid_choice"] = _(
            "Cannot sort by “%(value)s”: use one of %(sorts)s (prefix - to reverse)."
        ).replace("%(sorts)s", ", ".join(SORTS))
        self.fields["dates"].error_messages["invalid_choice"] = _(
            "“%(value)s”: dates apply to assigned, due or completed."
        )
        for name in ("date_from", "date_to"):
            self.fields[name].error_messages["invalid"] = _("Enter a date as YYYY-MM-DD.")
        self.fields["page"].error_messages["invalid"] = _("The page must be a whole number.")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def filters(self) -> ReportFilters:
        data = self.cleaned_data
        return ReportFilters(
            course=data.get("course") or "",
            department=data.get("department") or "",
            manager=data.get("manager") or "",
            status=data.get("status") or "",
            date_field=data.get("dates") or "assigned",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            sort=data.get("sort") or "due",
            page=data.get("page") or 1,
        )

    def error_lines(self) -> list[str]:
        return [
            f"{self.fields[name].label or name.replace('_', ' ').capitalize()}: {message}"
            if name != "__all__"
            else str(message)
            for name, messages in self.errors.items()
            for message in messages
        ]


class AssignmentForm(forms.Form):
    """HR assigns a course to whole departments and/or named people, with a due date."""

    course = forms.ModelChoiceField(
        queryset=Course.objects.order_by("title"), to_field_name="slug", label=_("Course")
    )
    due_date = forms.DateField(
        required=False, label=_("Due date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    departments = forms.ModelMultipleChoiceField(
        queryset=Department.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Departments"),
        help_text=_("Everyone in these departments, and whoever joins them later."),
    )
    people = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label=_("People"),
        help_text=_("Employee ids or usernames, separated by commas, spaces or new lines."),
    )

    def clean_people(self) -> list[Any]:
        names = [n for n in re.split(r"[\s,;]+", self.cleaned_data["people"]) if n]
        if not names:
            return []
        users = list(
            get_user_model()
            .objects.filter(Q(username__in=names) | Q(profile__employee_id__in=names))
            .select_related("profile")
        )
        known = {u.username for u in users} | {
            u.profile.employee_id for u in users if hasattr(u, "profile")
        }
        unknown = [n for n in names if n not in known]
        if unknown:
            raise forms.ValidationError(
                _("No employee with this id or username: %(names)s")
                % {"names": ", ".join(unknown[:20])}
            )
        return users

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("departments") and not data.get("people") and not self.errors:
            raise forms.ValidationError(_("Choose at least one department or person."))
        return data


class EmployeeImportForm(forms.Form):
    """HR uploads the directory file (checked by grading.reports.directory, not here)."""

    file = forms.FileField(
        label="Directory file (CSV, UTF-8)",
        help_text="Columns: employee_id, name, email, department, manager_employee_id, active.",
    )


class EmployeeImportConfirmForm(forms.Form):
    upload = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    sha256 = forms.RegexField(regex=r"^[0-9a-f]{64}$", widget=forms.HiddenInput)

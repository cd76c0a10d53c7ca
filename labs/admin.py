"""Instructor tools: datasets (CSV upload), labs (validate, re-grade), a read-only submissions
list, and the course list with what labs adds to it (course-folder upload, lab validation).

The classes only; `academy/admin.py` registers them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from academy.celery import app as celery_app
from academy.numbers import score_text
from courses import admin as courses_admin
from courses.authoring.source import CourseFolderError
from courses.authoring.unzip import MAX_UNPACKED_BYTES
from courses.models import Course
from courses.rendering import PYGMENTS_CSS_CLASS
from labs.datasets import MAX_CSV_BYTES, DatasetError, parse_dataset
from labs.models import Dataset, Lab, Submission
from labs.selectors import validation_verdict
from labs.services.authoring import course_folder_import_zip
from labs.services.datasets import dataset_import, dataset_replace_refusal
from labs.services.submissions import lab_validate_enqueue

# Registered by runs (runs.tasks), which sits above labs: enqueued by name.
REGRADE_TASK = "grading.tasks.regrade_submission"


def regrade_enqueue(*, submission_ids: Iterable[int], by: User) -> int:
    """Queue a re-grade (no retraining) of each run; returns how many were queued."""
    count = 0
    for pk in submission_ids:
        celery_app.send_task(REGRADE_TASK, args=[pk, by.pk])
        count += 1
    return count


def _staff(request: HttpRequest) -> User:
    # The admin only serves signed-in staff: its views never see an anonymous user.
    user = request.user
    assert isinstance(user, User)
    return user


class DatasetForm(forms.ModelForm):
    train_csv = forms.FileField(
        required=False, help_text=gettext_lazy("CSV with a header 'text,label' (UTF-8).")
    )
    heldout_csv = forms.FileField(
        required=False,
        help_text=gettext_lazy("Held-out split, same format. Never shown to learners."),
    )

    class Meta:
        model = Dataset
        fields = ["slug", "title", "description", "license_name", "source_markdown"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        train, heldout = cleaned.get("train_csv"), cleaned.get("heldout_csv")
        if not self.instance.pk and not (train and heldout):
            raise forms.ValidationError(_("Upload both the train and the held-out CSV."))
        if bool(train) != bool(heldout):
            raise forms.ValidationError(_("Upload both CSVs together to replace the rows."))
        if train and heldout:
            for upload in (train, heldout):
                # Checked before reading: a 200 MB upload must not be read into memory first.
                if upload.size is not None and upload.size > MAX_CSV_BYTES:
                    raise forms.ValidationError(
                        _("%(file)s: larger than %(mb)d MB")
                        % {"file": upload.name, "mb": MAX_CSV_BYTES // 1024 // 1024}
                    )
            try:
                self.parsed = parse_dataset(
                    train=train.read(),
                    heldout=heldout.read(),
                    train_name=train.name,
                    heldout_name=heldout.name,
                )
            except DatasetError as exc:
                raise forms.ValidationError(str(exc)) from None
            if self.instance.pk:
                refusal = dataset_replace_refusal(
                    dataset=self.instance, labels=self.parsed.labels, course=None
                )
                if refusal:
                    raise forms.ValidationError(refusal)
        return cleaned


class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ["title", "slug", "license_name", "label_count", "updated_at"]
    search_fields = ["title", "slug"]

    @admin.display(description=gettext_lazy("labels"))
    def label_count(self, obj: Dataset) -> int:
        return len(obj.labels)

    def save_model(
        self, request: HttpRequest, obj: Dataset, form: DatasetForm, change: bool
    ) -> None:
        parsed = getattr(form, "parsed", None)
        if parsed is None:  # metadata only
            super().save_model(request, obj, form, change)
            return
        dataset, outcome = dataset_import(
            slug=obj.slug,
            title=obj.title,
            description=obj.description,
            license_name=obj.license_name,
            source_markdown=obj.source_markdown,
            parsed=parsed,
        )
        obj.pk = dataset.pk
        messages.info(
            request,
            _(
                "Dataset %(slug)s %(outcome)s: %(train)d train, %(heldout)d held-out rows, "
                "%(labels)d labels."
            )
            % {
                "slug": dataset.slug,
                "outcome": outcome,
                "train": len(parsed.train),
                "heldout": len(parsed.heldout),
                "labels": len(parsed.labels),
            },
        )
        for warning in parsed.warnings:
            messages.warning(request, warning)


class LabAdmin(admin.ModelAdmin):
    # Few, short columns: the list fits 1280 px (the rubric is on each lab's own page).
    list_display = ["module", "dataset", "metric", "rubric", "reference", "starter", "validated_at"]
    readonly_fields = ["reference", "starter", "validated_at"]
    exclude = ["reference_score", "starter_score"]

    @admin.display(description="rubric")
    def rubric(self, obj: Lab) -> str:
        return f"{obj.baseline:g} → {obj.target:g}, pass {obj.pass_mark:g}"

    @admin.display(description="reference", ordering="reference_score")
    def reference(self, obj: Lab) -> str:
        return score_text(obj.reference_score)

    @admin.display(description="starter", ordering="starter_score")
    def starter(self, obj: Lab) -> str:
        return score_text(obj.starter_score)

    list_filter = ["module__course", "dataset"]
    actions = ["validate", "regrade_all"]

    @admin.action(
        description=gettext_lazy("Validate: run the reference, the starter and every ablation")
    )
    def validate(self, request: HttpRequest, queryset: QuerySet[Lab]) -> None:
        for lab in queryset:
            lab_validate_enqueue(lab=lab, by=_staff(request))
        self.message_user(
            request,
            _(
                "Queued the reference, starter and ablation runs of %(count)d lab(s). Their "
                "scores appear here when graded: the reference must pass, the starter and the "
                "ablations must not."
            )
            % {"count": queryset.count()},
        )

    @admin.action(
        description=gettext_lazy(
            "Re-grade every graded run (after a rubric change), without retraining"
        )
    )
    def regrade_all(self, request: HttpRequest, queryset: QuerySet[Lab]) -> None:
        runs = Submission.objects.filter(lab__in=queryset, status=Submission.Status.GRADED)
        queued = regrade_enqueue(
            submission_ids=runs.values_list("pk", flat=True), by=_staff(request)
        )
        self.message_user(request, _("Queued %(count)d re-grade(s).") % {"count": queued})


class CourseUploadForm(forms.Form):
    archive = forms.FileField(
        help_text=gettext_lazy(
            "A .zip of a course folder (course.yaml, one folder per stage, datasets/)."
        )
    )

    def clean_archive(self) -> Any:
        archive = self.cleaned_data["archive"]
        # By the size the upload declares, before anything reads it.
        if archive.size is not None and archive.size > MAX_UNPACKED_BYTES:
            raise forms.ValidationError(
                _("%(file)s: larger than %(mb)d MB")
                % {"file": archive.name, "mb": MAX_UNPACKED_BYTES // 1024 // 1024}
            )
        return archive


class CourseAdmin(courses_admin.CourseAdmin):
    """The course list, with the whole-folder upload and the validation of every lab."""

    actions = [*courses_admin.CourseAdmin.actions, "validate_course_labs"]
    change_list_template = "admin/courses/course/change_list.html"

    @admin.action(
        description=gettext_lazy("Validate every lab: run each reference, starter and ablation")
    )
    def validate_course_labs(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        """The whole-course counterpart of "Validate" on the lab list (manage.py validate_course)."""
        labs = Lab.objects.filter(module__course__in=queryset).select_related("module")
        for lab in labs:
            lab_validate_enqueue(lab=lab, by=_staff(request))
        if not labs:
            self.message_user(request, _("The selected course(s) have no labs."), messages.WARNING)
            return
        self.message_user(
            request,
            _(
                "Queued the reference, starter and ablation runs of %(count)d lab(s). Their "
                "scores appear on the lab list when graded: every reference must pass, no "
                "starter or ablation may."
            )
            % {"count": len(labs)},
        )

    def get_urls(self) -> list[URLPattern]:
        upload = path(
            "upload/", self.admin_site.admin_view(self.upload_view), name="courses_course_upload"
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            messages.error(request, _("You may not import courses."))
            return redirect("admin:courses_course_changelist")
        form = CourseUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["archive"]
            try:
                report = course_folder_import_zip(upload=upload, name=upload.name)
            except CourseFolderError as exc:
                form.add_error(
                    "archive", _("Import failed, nothing was changed. %(error)s") % {"error": exc}
                )
            else:
                for line in report.lines():
                    messages.info(request, line)
                return redirect("admin:courses_course_change", report.course.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Import a course folder"),
            "opts": self.model._meta,
        }
        return render(request, "admin/courses/course/upload.html", context)


class PassedFilter(admin.SimpleListFilter):
    title = "passed"
    parameter_name = "passed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", _("Passed")), ("no", _("Graded, not passed"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Submission]
    ) -> QuerySet[Submission]:
        if self.value() in ("yes", "no"):
            return queryset.filter(grade__passed=self.value() == "yes")
        return queryset


class SubmissionAdmin(admin.ModelAdmin):
    """Read-only: submissions are evidence; they change only through the pipeline."""

    class Media:
        css = {"all": ["css/pygments.css", "css/admin-authoring.css"]}

    list_display = [
        "pk",
        "learner",
        "lab",
        "status",
        "score",
        "verdict",
        "created_at",
    ]
    list_filter = ["lab", "status", PassedFilter, "validation_of", "created_at"]
    search_fields = ["learner__username", "learner__email"]
    list_select_related = ["learner", "lab__module", "grade"]
    actions = ["regrade"]
    # The code as a read-only, highlighted block (monospace, indentation kept), not a field.
    readonly_fields = [
        "code_block",
        "score",
        "verdict",
        *(f.name for f in Submission._meta.fields if f.name != "code"),
    ]
    exclude = ["code"]

    @admin.display(description=gettext_lazy("score"))
    def score(self, obj: Submission) -> str:
        grade = getattr(obj, "grade", None)
        return f"{score_text(grade.score)}{' ✓' if grade.passed else ''}" if grade else "—"

    @admin.display(description="validation: verdict", ordering="validation_of")
    def verdict(self, obj: Submission) -> str:
        """A validation run's outcome against what it must do: the reference passes, the
        starter and every ablation do not. Blank for a learner's run."""
        if not obj.validation_of:
            return ""
        role = obj.ablation or obj.validation_of  # one column for both: the list fits 1280 px
        if obj.is_active:
            return f"{role}: …"
        grade = getattr(obj, "grade", None)
        verdict = validation_verdict(obj.validation_of, passed=bool(grade and grade.passed))
        return f"{role}: {verdict}"

    @admin.display(description="code")
    def code_block(self, obj: Submission) -> str:
        html = highlight(obj.code, PythonLexer(), HtmlFormatter(cssclass=PYGMENTS_CSS_CLASS))
        return format_html('<div class="admin-code">{}</div>', mark_safe(html))  # noqa: S308

    @admin.action(description=gettext_lazy("Re-grade selected runs (no retraining)"))
    def regrade(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        graded = queryset.filter(status=Submission.Status.GRADED)
        queued = regrade_enqueue(
            submission_ids=graded.values_list("pk", flat=True), by=_staff(request)
        )
        skipped = queryset.count() - queued
        self.message_user(
            request,
            _("Queued %(count)d re-grade(s).") % {"count": queued}
            + (" " + _("%(count)d not graded, skipped.") % {"count": skipped} if skipped else ""),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

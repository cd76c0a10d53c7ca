"""Instructor tools: datasets (CSV upload), labs (validate, re-grade), a read-only submissions list."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from courses.models import Course
from labs.datasets import DatasetError, parse_dataset
from labs.models import Dataset, Lab, Submission
from labs.services.datasets import dataset_import
from labs.services.submissions import lab_validate_enqueue


class DatasetForm(forms.ModelForm):
    train_csv = forms.FileField(required=False, help_text="CSV with a header 'text,label' (UTF-8).")
    heldout_csv = forms.FileField(
        required=False, help_text="Held-out split, same format. Never shown to learners."
    )

    class Meta:
        model = Dataset
        fields = ["slug", "title", "description", "license_name", "source_markdown"]

    def clean(self) -> dict:
        cleaned = super().clean()
        train, heldout = cleaned.get("train_csv"), cleaned.get("heldout_csv")
        if not self.instance.pk and not (train and heldout):
            raise forms.ValidationError("Upload both the train and the held-out CSV.")
        if bool(train) != bool(heldout):
            raise forms.ValidationError("Upload both CSVs together to replace the rows.")
        if train and heldout:
            try:
                self.parsed = parse_dataset(
                    train=train.read(),
                    heldout=heldout.read(),
                    train_name=train.name,
                    heldout_name=heldout.name,
                )
            except DatasetError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    list_display = ["title", "slug", "license_name", "label_count", "updated_at"]
    search_fields = ["title", "slug"]

    @admin.display(description="labels")
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
            slug=obj.slug, title=obj.title, description=obj.description, license_name=obj.license_name,
            source_markdown=obj.source_markdown, parsed=parsed,
        )  # fmt: skip
        obj.pk = dataset.pk
        messages.info(request, f"Dataset {dataset.slug} {outcome}: {len(parsed.train)} train, "
                      f"{len(parsed.heldout)} held-out rows, {len(parsed.labels)} labels.")  # fmt: skip


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ["module", "dataset", "metric", "baseline", "target", "pass_mark",
                    "reference_score", "starter_score", "validated_at"]  # fmt: skip
    readonly_fields = ["reference_score", "starter_score", "validated_at"]
    list_filter = ["module__course", "dataset"]
    actions = ["validate", "regrade_all"]

    @admin.action(description="Validate: run the reference solution and the starter code")
    def validate(self, request: HttpRequest, queryset: QuerySet[Lab]) -> None:
        for lab in queryset:
            lab_validate_enqueue(lab=lab, by=request.user)
        self.message_user(
            request,
            f"Queued the reference and starter runs of {queryset.count()} lab(s). Their scores appear "
            "here when graded: the reference must pass, the starter must not.",
        )

    @admin.action(
        description="Re-grade every graded run (after a rubric change), without retraining"
    )
    def regrade_all(self, request: HttpRequest, queryset: QuerySet[Lab]) -> None:
        from runs.tasks import regrade_submission

        runs = Submission.objects.filter(lab__in=queryset, status=Submission.Status.GRADED)
        for pk in runs.values_list("pk", flat=True):
            regrade_submission.delay(pk, request.user.pk)
        self.message_user(request, f"Queued {runs.count()} re-grade(s).")


@admin.action(description="Validate every lab: run each reference solution and starter code")
def validate_course_labs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Course]
) -> None:
    """The whole-course counterpart of "Validate" on the lab list (manage.py validate_course)."""
    labs = Lab.objects.filter(module__course__in=queryset).select_related("module")
    for lab in labs:
        lab_validate_enqueue(lab=lab, by=request.user)
    if not labs:
        modeladmin.message_user(request, "The selected course(s) have no labs.", messages.WARNING)
        return
    modeladmin.message_user(
        request,
        f"Queued the reference and starter runs of {len(labs)} lab(s). Their scores appear on "
        "the lab list when graded: every reference must pass, no starter may.",
    )


# The course list belongs to `courses`, which must not import labs: the action is added here.
_course_admin = admin.site.get_model_admin(Course)
_course_admin.actions = [*(_course_admin.actions or []), validate_course_labs]


class PassedFilter(admin.SimpleListFilter):
    title = "passed"
    parameter_name = "passed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Passed"), ("no", "Graded, not passed")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Submission]
    ) -> QuerySet[Submission]:
        if self.value() in ("yes", "no"):
            return queryset.filter(grade__passed=self.value() == "yes")
        return queryset


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    """Read-only: submissions are evidence; they change only through the pipeline."""

    list_display = [
        "pk",
        "learner",
        "lab",
        "status",
        "score",
        "created_at",
        "deliveries",
        "validation_of",
    ]
    list_filter = ["lab", "status", PassedFilter, "validation_of", "created_at"]
    search_fields = ["learner__username", "learner__email"]
    list_select_related = ["learner", "lab__module", "grade"]
    actions = ["regrade"]
    readonly_fields = [f.name for f in Submission._meta.fields]

    @admin.display(description="score")
    def score(self, obj: Submission) -> str:
        grade = getattr(obj, "grade", None)
        return f"{grade.score:.0f}{' ✓' if grade.passed else ''}" if grade else "—"

    @admin.action(description="Re-grade selected runs (no retraining)")
    def regrade(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        from runs.tasks import regrade_submission

        graded = queryset.filter(status=Submission.Status.GRADED)
        for pk in graded.values_list("pk", flat=True):
            regrade_submission.delay(pk, request.user.pk)
        skipped = queryset.count() - graded.count()
        self.message_user(
            request,
            f"Queued {graded.count()} re-grade(s)."
            + (f" {skipped} not graded, skipped." if skipped else ""),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

"""Authoring: courses, stages, modules and checks in the Django admin; HR's people lists.

The classes only: `academy/admin.py` registers each model once, with the class of the
highest app that extends it (labs adds the course-folder upload and lab validation to
the course list, grading the HR actions to departments, profiles and enrollments).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courses.authoring.parse import canonical_body, content_languages
from courses.models import (
    CheckAnswer,
    CheckAttempt,
    CheckOption,
    CheckOptionTranslation,
    CheckQuestion,
    CheckQuestionTranslation,
    Course,
    CourseTranslation,
    Module,
    ModuleTranslation,
    Stage,
    StageTranslation,
)
from courses.rendering import MarkdownError, render_markdown
from courses.services import (
    check_translation_render,
    course_content_changed,
    course_set_published,
    module_draft_save,
    module_translation_save,
    question_render,
)


class CourseContentAdmin(admin.ModelAdmin):
    """Admin for something learner pages show: every save or delete marks the course's
    cached pages out of date (web/pagecache.py)."""

    def course_id_of(self, obj: Any) -> int:
        return obj.course_id

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Runs after the object and its inlines are saved, for add and change alike.
        super().save_related(request, form, formsets, change)
        course_content_changed(course=self.course_id_of(form.instance))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        course_id = self.course_id_of(obj)
        super().delete_model(request, obj)
        course_content_changed(course=course_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        course_ids = {self.course_id_of(obj) for obj in queryset}
        super().delete_queryset(request, queryset)
        for course_id in course_ids:
            course_content_changed(course=course_id)


class TranslationForm(forms.ModelForm):
    """A translation's language is one the site offers (settings.LANGUAGES), not English."""

    def clean_language(self) -> str:
        language = (self.cleaned_data.get("language") or "").strip().lower()
        if language not in content_languages():
            raise forms.ValidationError(
                f"“{language}” is not one of the site's languages other than English "
                f"({', '.join(sorted(content_languages()))})."
            )
        return language

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("body_markdown", "prompt_markdown", "text_markdown", "explanation_markdown"):
            if name in self.fields:
                _markdown_error(self, name)
        return cleaned


class CourseTranslationInline(admin.TabularInline):
    model = CourseTranslation
    form = TranslationForm
    fields = ["language", "title", "summary"]
    extra = 0


class StageTranslationInline(admin.TabularInline):
    model = StageTranslation
    form = TranslationForm
    fields = ["language", "title", "summary"]
    extra = 0


class ModuleTranslationForm(TranslationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As on the module itself: an unpublished draft is what the translator goes on editing.
        if self.instance.pk and self.instance.draft_saved_at and not self.is_bound:
            self.initial["body_markdown"] = self.instance.draft_markdown


class ModuleTranslationInline(admin.StackedInline):
    """The lesson in another language; "Save as draft" keeps its body for the preview too.
    Its check's texts are translated on each question's page."""

    model = ModuleTranslation
    form = ModuleTranslationForm
    fields = ["language", "title", "summary", "body_markdown"]
    extra = 0


class CheckQuestionTranslationInline(admin.StackedInline):
    model = CheckQuestionTranslation
    form = TranslationForm
    fields = ["language", "prompt_markdown", "explanation_markdown"]
    extra = 0
    verbose_name = gettext_lazy(
        "translation (options are translated under “Check option translations”)"
    )


class CheckOptionTranslationAdmin(CourseContentAdmin):
    """An option's text in another language (a question's options are inline on its page,
    and the admin has no inline within an inline)."""

    form = TranslationForm
    list_display = ["option", "language", "question"]
    list_filter = ["language", "option__question__module__course"]
    search_fields = ["text_markdown", "option__question__key", "option__question__module__slug"]
    fields = ["option", "language", "text_markdown", "explanation_markdown"]
    raw_id_fields = ["option"]

    def course_id_of(self, obj: CheckOptionTranslation) -> int:
        return obj.option.question.module.course_id

    @admin.display(description=gettext_lazy("question"))
    def question(self, obj: CheckOptionTranslation) -> str:
        return str(obj.option.question)

    def save_model(
        self, request: HttpRequest, obj: CheckOptionTranslation, form: Any, change: bool
    ) -> None:
        check_translation_render(translation=obj)


class StageInline(admin.TabularInline):
    model = Stage
    fields = ["position", "slug", "title", "summary"]
    extra = 0
    show_change_link = True


class ModuleInline(admin.TabularInline):
    model = Module
    fields = ["position", "slug", "title", "kind", "required", "estimated_minutes"]
    extra = 0
    show_change_link = True


class CourseAdmin(CourseContentAdmin):
    list_display = ["title", "slug", "is_published", "updated_at"]
    list_filter = ["is_published"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [StageInline, CourseTranslationInline]
    actions = ["publish", "unpublish"]

    def course_id_of(self, obj: Course) -> int:
        return obj.pk

    @admin.action(description=gettext_lazy("Publish selected courses"))
    def publish(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset:
            course_set_published(course=course, published=True)
        self.message_user(
            request, _("Published %(count)d course(s).") % {"count": queryset.count()}
        )

    @admin.action(description=gettext_lazy("Unpublish selected courses"))
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset:
            course_set_published(course=course, published=False)
        self.message_user(
            request, _("Unpublished %(count)d course(s).") % {"count": queryset.count()}
        )


class StageAdmin(CourseContentAdmin):
    list_display = ["title", "course", "position"]
    list_filter = ["course"]
    inlines = [ModuleInline, StageTranslationInline]


def _line_error(exc: MarkdownError) -> str:
    if not exc.line:
        return str(exc.message)
    return _("Line %(line)s: %(message)s") % {"line": exc.line, "message": exc.message}


def _markdown_error(form: forms.BaseForm, field: str) -> None:
    """Refuse Markdown that does not render (bad math), naming the line, like the lesson body."""
    try:
        render_markdown(form.cleaned_data.get(field) or "")
    except MarkdownError as exc:
        form.add_error(field, _line_error(exc))


class QuestionInlineForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _markdown_error(self, "prompt_markdown")
        return cleaned


class QuestionInline(admin.TabularInline):
    """The module's knowledge check; options are edited on each question's page."""

    model = CheckQuestion
    form = QuestionInlineForm
    fields = ["position", "key", "prompt_markdown", "option_count"]
    readonly_fields = ["option_count"]
    extra = 0
    show_change_link = True
    verbose_name = gettext_lazy("knowledge-check question")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A question is added on its own page, with its options, so a module never
        # shows learners a question that has no options yet (see "add_question").
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[CheckQuestion]:
        # Retired questions stay only as the record of old answers.
        return super().get_queryset(request).filter(retired_at__isnull=True)

    @admin.display(description=gettext_lazy("options"))
    def option_count(self, obj: CheckQuestion) -> str:
        if not obj.pk:
            return _("Save, then open the question to add options.")
        correct = sum(o.is_correct for o in obj.options.all())
        return _("%(count)d (%(correct)d correct)") % {
            "count": obj.options.count(),
            "correct": correct,
        }


class ModuleForm(forms.ModelForm):
    class Meta:
        model = Module
        fields = [
            "course",
            "stage",
            "position",
            "slug",
            "title",
            "kind",
            "required",
            "estimated_minutes",
            "summary",
            "body_markdown",
            "check_pass_mark",
            "check_draw_count",
            "check_max_attempts",
            "check_cooldown_minutes",
        ]
        widgets = {"body_markdown": forms.Textarea(attrs={"rows": 30, "class": "body-editor"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An unpublished draft is what the instructor goes on editing.
        if self.instance.pk and self.instance.draft_saved_at and not self.is_bound:
            self.initial["body_markdown"] = self.instance.draft_markdown
        self.fields["body_markdown"].help_text = _(
            "“Save as draft” keeps this text for the preview only; learners see it once you "
            "save with “Save” (which publishes)."
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        stage, course = cleaned.get("stage"), cleaned.get("course")
        if stage and course and stage.course_id != course.pk:
            self.add_error("stage", _("The stage belongs to another course."))
        try:
            self.rendered_html = render_markdown(cleaned.get("body_markdown") or "").html
        except MarkdownError as exc:
            self.add_error("body_markdown", _line_error(exc))
        return cleaned


class ModuleAdmin(CourseContentAdmin):
    form = ModuleForm
    list_display = ["title", "course", "stage", "kind", "required", "position"]
    list_filter = ["course", "kind", "required"]
    search_fields = ["title", "slug"]
    readonly_fields = ["preview", "source_path", "add_question"]
    inlines = [QuestionInline, ModuleTranslationInline]

    @admin.display(description=gettext_lazy("Knowledge check"))
    def add_question(self, obj: Module) -> str:
        if not obj.pk:
            return _("Save the module first.")
        if obj.kind == Module.Kind.LAB:
            return _("A lab completes through its graded run; it has no knowledge check.")
        return format_html(
            '<a class="addlink" href="{}?module={}">Add a question with its options</a>'
            " — a module with questions completes only when the learner passes them.",
            reverse("admin:courses_checkquestion_add"),
            obj.pk,
        )

    class Media:
        css = {"all": ["css/admin-authoring.css"]}

    def save_model(self, request: HttpRequest, obj: Module, form: ModuleForm, change: bool) -> None:
        if change and "_save_draft" in request.POST:
            # The body goes to the draft; what learners see (the stored body) stays as it was.
            draft = canonical_body(obj.body_markdown)
            published = Module.objects.values_list("body_markdown", "body_html").get(pk=obj.pk)
            obj.body_markdown, obj.body_html = published
            super().save_model(request, obj, form, change)
            module_draft_save(module=obj, body_markdown=draft)
            return
        # Rendered once here (the form already checked it renders), never per request.
        obj.body_markdown = canonical_body(obj.body_markdown)
        obj.body_html = form.rendered_html
        obj.draft_markdown = obj.draft_html = ""  # "Save" publishes: no draft is left
        obj.draft_saved_at = None
        super().save_model(request, obj, form, change)

    def response_change(self, request: HttpRequest, obj: Module) -> HttpResponse:
        if "_save_draft" in request.POST:
            self.message_user(request, _("Draft saved: learners still see the published lesson."))
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def save_formset(self, request: HttpRequest, form: ModuleForm, formset, change: bool) -> None:
        if formset.model is ModuleTranslation:
            translations = formset.save(commit=False)
            for gone in formset.deleted_objects:
                gone.delete()
            for translation in translations:
                module_translation_save(
                    translation=translation, draft=change and "_save_draft" in request.POST
                )
            return
        super().save_formset(request, form, formset, change)
        for question in formset.new_objects + [obj for obj, _fields in formset.changed_objects]:
            question_render(question=question)

    @admin.display(description=gettext_lazy("Preview (the learner page itself)"))
    def preview(self, obj: Module) -> str:
        # The learner page's own template and CSS, not an imitation in the admin's styles.
        if not obj.pk:
            return _("Save to see the preview.")
        preview_url = reverse("courses:module-preview", args=[obj.course.slug, obj.slug])
        learner_url = reverse("courses:module", args=[obj.course.slug, obj.slug])
        if obj.draft_saved_at:
            return format_html(
                'Draft saved {}. <a href="{}" target="_blank">Preview the draft</a> · '
                '<a href="{}" target="_blank">The published page</a>',
                date_format(timezone.localtime(obj.draft_saved_at), "j M Y, H:i"),
                preview_url,
                learner_url,
            )
        return format_html(
            'No draft. <a href="{}" target="_blank">Preview as learners see it</a>', preview_url
        )


class OptionInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        if self.instance.numeric_value is not None:
            if kept:
                raise forms.ValidationError(
                    "A numeric question has no options: delete them, or clear its value."
                )
            return
        if len(kept) < 2:
            raise forms.ValidationError(_("A question needs at least two options."))
        if not any(row.get("is_correct") for row in kept):
            raise forms.ValidationError(_("Mark at least one option as correct."))
        if all(row.get("is_correct") for row in kept):
            raise forms.ValidationError(_("Every option is correct: add a wrong one."))


class OptionInlineForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _markdown_error(self, "text_markdown")
        _markdown_error(self, "explanation_markdown")
        return cleaned


class OptionInline(admin.TabularInline):
    model = CheckOption
    form = OptionInlineForm
    formset = OptionInlineFormSet
    fields = ["position", "text_markdown", "is_correct", "explanation_markdown"]
    extra = 2


class CheckQuestionForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        module = cleaned.get("module")
        if module and module.kind == Module.Kind.LAB:
            self.add_error(
                "module", "A lab has no knowledge check: it completes by its graded run."
            )
        _markdown_error(self, "prompt_markdown")
        _markdown_error(self, "explanation_markdown")
        value, tolerance = cleaned.get("numeric_value"), cleaned.get("numeric_tolerance")
        if value is None and tolerance is not None:
            self.add_error("numeric_value", _("A tolerance needs the value it is around."))
        if tolerance is not None and tolerance < 0:
            self.add_error("numeric_tolerance", _("The tolerance must be 0 or more."))
        if value is not None and not (cleaned.get("explanation_markdown") or "").strip():
            self.add_error("explanation_markdown", _("A numeric question needs an explanation."))
        return cleaned


class CheckQuestionAdmin(CourseContentAdmin):
    list_display = ["key", "module", "position", "retired_at"]
    list_filter = ["module__course", "retired_at"]
    search_fields = ["key", "prompt_markdown", "module__slug"]
    form = CheckQuestionForm
    fields = [
        "module",
        "position",
        "key",
        "prompt_markdown",
        "preview",
        # A numeric question: a value (and tolerance) and one explanation, and no options.
        "numeric_value",
        "numeric_tolerance",
        "explanation_markdown",
    ]
    readonly_fields = ["preview"]
    inlines = [OptionInline, CheckQuestionTranslationInline]

    class Media:
        css = {"all": ["css/admin-authoring.css"]}  # the options table fits 1280 px

    def course_id_of(self, obj: CheckQuestion) -> int:
        return obj.module.course_id

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is CheckQuestionTranslation:
            for translation in formset.new_objects + [obj for obj, _ in formset.changed_objects]:
                check_translation_render(translation=translation)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # Rendered once, after the options are saved, so the fingerprint covers them. The
        # admin saves in one transaction, so the course's mark (in the base class) and the
        # render become visible together.
        super().save_related(request, form, formsets, change)
        question_render(question=form.instance)

    @admin.display(description=gettext_lazy("Rendered prompt"))
    def preview(self, obj: CheckQuestion) -> str:
        if not obj.pk:
            return _("Save to see the preview.")
        return format_html(
            '<div class="lesson-body" style="max-width:75ch">{}</div>',
            mark_safe(obj.prompt_html),  # sanitised by nh3 when it was rendered  # noqa: S308
        )


class CheckAnswerInline(admin.TabularInline):
    model = CheckAnswer
    fields = ["question", "prompt_text", "selected_texts", "is_correct"]
    readonly_fields = ["question", "prompt_text", "selected_texts", "is_correct"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence for HR (answers, progress, grades, audit): it changes only through services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class CheckAttemptAdmin(ReadOnlyAdmin):
    """Evidence of who answered what and when: read-only for everyone."""

    list_display = ["learner", "module", "number", "score", "passed", "submitted_at"]
    list_filter = ["passed", "module__course", "module"]
    search_fields = ["learner__username", "learner__last_name", "module__slug"]
    date_hierarchy = "submitted_at"
    inlines = [CheckAnswerInline]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [f.name for f in CheckAttempt._meta.fields if f.name != "draw"] + ["shown"]

    @admin.display(description=gettext_lazy("As shown to the learner"))
    def shown(self, obj: CheckAttempt) -> str:
        """The attempt's questions and options in the order the learner saw them."""
        if not obj.draw:
            return "—"  # attempts from before draws were stored
        questions = CheckQuestion.objects.filter(pk__in=[q for q, _ in obj.draw])
        by_id = {q.pk: q for q in questions.prefetch_related("options")}
        items = format_html_join(
            "",
            "<li>{}<ol type='a'>{}</ol></li>",
            (
                (
                    by_id[question_id].prompt_markdown.strip(),
                    format_html_join(
                        "",
                        "<li>{}</li>",
                        (
                            (o.text_markdown.strip(),)
                            for o in _in_order(by_id[question_id], option_ids)
                        ),
                    )
                    if option_ids
                    else format_html("<li>(a number: {})</li>", by_id[question_id].numeric_value),
                )
                for question_id, option_ids in obj.draw
                if question_id in by_id
            ),
        )
        return format_html("<ol>{}</ol>", items)


def _in_order(question: CheckQuestion, option_ids: list[int]) -> list[CheckOption]:
    options = {o.pk: o for o in question.options.all()}
    return [options[pk] for pk in option_ids if pk in options]


class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class EmployeeProfileAdmin(admin.ModelAdmin):
    list_display = ["employee_id", "user", "department", "manager"]
    list_filter = ["department"]
    search_fields = ["employee_id", "user__username", "user__last_name"]
    autocomplete_fields = ["user", "manager"]


class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["learner", "course", "due_date", "assigned_by", "completed_at"]
    list_filter = ["course", "completed_at"]
    search_fields = ["learner__username"]
    autocomplete_fields = ["learner", "assigned_by"]

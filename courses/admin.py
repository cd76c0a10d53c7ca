"""Authoring: courses, stages and modules in the Django admin, plus course-folder upload."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from courses.importer import CourseFolderError
from courses.models import Course, Department, EmployeeProfile, Enrollment, Module, Stage
from courses.rendering import MarkdownError, render_markdown
from courses.services import course_set_published
from courses.zipimport import course_import_zip


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


class CourseUploadForm(forms.Form):
    archive = forms.FileField(
        help_text="A .zip of a course folder (course.yaml + one folder per stage)."
    )


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "is_published", "updated_at"]
    list_filter = ["is_published"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [StageInline]
    actions = ["publish", "unpublish"]
    change_list_template = "admin/courses/course/change_list.html"

    @admin.action(description="Publish selected courses")
    def publish(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset:
            course_set_published(course=course, published=True)
        self.message_user(request, f"Published {queryset.count()} course(s).")

    @admin.action(description="Unpublish selected courses")
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset:
            course_set_published(course=course, published=False)
        self.message_user(request, f"Unpublished {queryset.count()} course(s).")

    def get_urls(self) -> list:
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="courses_course_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            messages.error(request, "You may not import courses.")
            return redirect("admin:courses_course_changelist")
        form = CourseUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["archive"]
            try:
                report = course_import_zip(upload=upload, name=upload.name)
            except CourseFolderError as exc:
                form.add_error("archive", f"Import failed, nothing was changed. {exc}")
            else:
                for line in report.lines():
                    messages.info(request, line)
                return redirect("admin:courses_course_change", report.course.pk)
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import a course folder",
                   "opts": self.model._meta}  # fmt: skip
        return render(request, "admin/courses/course/upload.html", context)


@admin.register(Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "position"]
    list_filter = ["course"]
    inlines = [ModuleInline]


class ModuleForm(forms.ModelForm):
    class Meta:
        model = Module
        fields = ["course", "stage", "position", "slug", "title", "kind", "required",
                  "estimated_minutes", "summary", "body_markdown"]  # fmt: skip
        widgets = {
            "body_markdown": forms.Textarea(attrs={"rows": 30, "style": "font-family: monospace"})
        }

    def clean(self) -> dict:
        cleaned = super().clean()
        stage, course = cleaned.get("stage"), cleaned.get("course")
        if stage and course and stage.course_id != course.pk:
            self.add_error("stage", "The stage belongs to another course.")
        try:
            self.rendered_html = render_markdown(cleaned.get("body_markdown") or "").html
        except MarkdownError as exc:
            self.add_error(
                "body_markdown", f"Line {exc.line}: {exc.message}" if exc.line else exc.message
            )
        return cleaned


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    form = ModuleForm
    list_display = ["title", "course", "stage", "kind", "required", "position"]
    list_filter = ["course", "kind", "required"]
    search_fields = ["title", "slug"]
    readonly_fields = ["preview", "source_path"]

    def save_model(self, request: HttpRequest, obj: Module, form: ModuleForm, change: bool) -> None:
        # Rendered once here (the form already checked it renders), never per request.
        obj.body_html = form.rendered_html
        super().save_model(request, obj, form, change)

    @admin.display(description="Rendered preview (as learners see it)")
    def preview(self, obj: Module) -> str:
        if not obj.pk:
            return "Save to see the preview."
        return format_html(
            '<div class="lesson-body" style="max-width:75ch;border:1px solid #ccc;padding:1rem">{}</div>'
            '<p><a href="{}">Open the learner page</a></p>',
            mark_safe(obj.body_html),  # sanitised by nh3 when it was rendered  # noqa: S308
            reverse("courses:module", args=[obj.course.slug, obj.slug]),
        )


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(EmployeeProfile)
class EmployeeProfileAdmin(admin.ModelAdmin):
    list_display = ["employee_id", "user", "department", "manager"]
    list_filter = ["department"]
    search_fields = ["employee_id", "user__username", "user__last_name"]
    autocomplete_fields = ["user", "manager"]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["learner", "course", "due_date", "assigned_by", "completed_at"]
    list_filter = ["course", "completed_at"]
    search_fields = ["learner__username"]
    autocomplete_fields = ["learner", "assigned_by"]

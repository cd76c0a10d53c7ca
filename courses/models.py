"""The curriculum: Course → Stage → Module, plus who learns it (departments,
employee profiles, enrollments). Learner progress lives in `grading`."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Department(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EmployeeProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    employee_id = models.CharField(max_length=40, unique=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
    )

    class Meta:
        verbose_name = _("employee profile")
        verbose_name_plural = _("employee profiles")

    def __str__(self) -> str:
        return f"{self.employee_id} ({self.user})"


class Course(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Stage(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="stages")
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["course", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["course", "slug"], name="stage_slug_unique_in_course")
        ]

    def __str__(self) -> str:
        return f"{self.course.slug}/{self.slug}"


class Module(models.Model):
    class Kind(models.TextChoices):
        THEORY = "theory", _("Theory")
        LAB = "lab", _("Code lab")
        CASE_STUDY = "case_study", _("Case study")

    # The course is stored beside the stage so a module slug is unique within
    # its course (module URLs are /courses/<course>/<module>/).
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="modules")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="modules")
    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.THEORY)
    required = models.BooleanField(default=True)
    estimated_minutes = models.PositiveIntegerField(default=15)
    summary = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=0)
    body_markdown = models.TextField(blank=True)
    # Rendered and sanitised once when the Markdown is saved or imported.
    body_html = models.TextField(blank=True, editable=False)
    # An instructor's unpublished edit of the body: learners keep seeing body_html until it
    # is published (the admin's "Save"; courses/admin.py); previewed on the learner page.
    draft_markdown = models.TextField(blank=True, editable=False)
    draft_html = models.TextField(blank=True, editable=False)
    draft_saved_at = models.DateTimeField(null=True, blank=True, editable=False)
    source_path = models.CharField(max_length=300, blank=True, editable=False)
    check_pass_mark = models.PositiveSmallIntegerField(
        "knowledge-check pass mark (%)",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Share of the questions to answer correctly; used only if the module has a check.",
    )
    # Without limits a three-option check falls to elimination in three tries; a cap
    # and a cool-down make each attempt count.
    check_max_attempts = models.PositiveSmallIntegerField(
        "knowledge-check attempts allowed",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most attempts a learner may make; empty for no cap.",
    )
    check_draw_count = models.PositiveSmallIntegerField(
        "knowledge-check questions per attempt",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Questions drawn at random from the pool for each attempt; empty for all.",
    )
    check_cooldown_minutes = models.PositiveIntegerField(
        "knowledge-check cool-down (minutes)",
        default=0,
        help_text="Minutes a learner waits after a failed attempt before the next; 0 for none.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("module")
        verbose_name_plural = _("modules")
        ordering = ["course", "stage__position", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["course", "slug"], name="module_slug_unique_in_course")
        ]

    def __str__(self) -> str:
        return f"{self.course.slug}/{self.slug}"


class Enrollment(models.Model):
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assignments_made",
    )
    due_date = models.DateField(null=True, blank=True)
    enrolled_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Counts every change to this learner's progress in the course; cached learner pages
    # are keyed on it (web/pagecache.py), so a change makes them miss at once.
    progress_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        ordering = ["due_date", "enrolled_at"]
        constraints = [
            models.UniqueConstraint(fields=["learner", "course"], name="one_enrollment_per_course")
        ]

    def __str__(self) -> str:
        return f"{self.learner} → {self.course}"


class CheckQuestion(models.Model):
    """One multiple-choice question of a module's knowledge check.

    A question that learners have answered is never edited in a way that changes
    what they answered: the importer retires it (`retired_at`) and adds a new
    one, so every recorded answer still points at the question it answered.
    """

    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="questions")
    # The author's id for the question (front matter `id:`, default q1, q2, ...).
    key = models.SlugField(max_length=80)
    position = models.PositiveIntegerField(default=0)
    prompt_markdown = models.TextField()
    prompt_html = models.TextField(blank=True, editable=False)
    # A numeric question has no options: the learner types a number, right when it is
    # within `numeric_tolerance` of `numeric_value`; its explanation is shown after a pass.
    numeric_value = models.FloatField(null=True, blank=True)
    numeric_tolerance = models.FloatField(null=True, blank=True)
    explanation_markdown = models.TextField(blank=True)
    explanation_html = models.TextField(blank=True, editable=False)
    # Hash of what a learner answers (prompt, option texts, which are correct);
    # explanations are not part of it, so fixing an explanation keeps answers valid.
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("check question")
        verbose_name_plural = _("check questions")
        ordering = ["module", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["module", "key"],
                condition=models.Q(retired_at__isnull=True),
                name="one_live_question_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.module.slug} · {self.key}"


class CheckOption(models.Model):
    question = models.ForeignKey(CheckQuestion, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveIntegerField(default=0)
    text_markdown = models.TextField()
    text_html = models.TextField(blank=True, editable=False)
    is_correct = models.BooleanField(default=False)
    explanation_markdown = models.TextField()
    explanation_html = models.TextField(blank=True, editable=False)

    class Meta:
        verbose_name = _("check option")
        verbose_name_plural = _("check options")
        ordering = ["question", "position", "id"]

    def __str__(self) -> str:
        return self.text_markdown[:60]


class CheckAttempt(models.Model):
    """One submission of a knowledge check by one learner: kept for good (HR evidence)."""

    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="check_attempts"
    )
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="check_attempts")
    number = models.PositiveIntegerField()  # 1, 2, 3... per learner and module
    submitted_at = models.DateTimeField(auto_now_add=True)
    correct_count = models.PositiveIntegerField()
    question_count = models.PositiveIntegerField()
    score = models.PositiveSmallIntegerField()  # percent of questions answered correctly
    pass_mark = models.PositiveSmallIntegerField()  # the module's pass mark at the time
    passed = models.BooleanField()
    # What the learner was shown, in order: [[question id, [option ids as shown]], ...]
    # (courses.draws), so the record replays the attempt as it was seen.
    draw = models.JSONField(default=list, editable=False)

    class Meta:
        verbose_name = _("check attempt")
        verbose_name_plural = _("check attempts")
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["learner", "module", "number"], name="check_attempt_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.learner} · {self.module} · attempt {self.number} · {self.score}%"


class CheckAnswer(models.Model):
    """What one learner chose for one question in one attempt, with the texts as they were."""

    attempt = models.ForeignKey(CheckAttempt, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(CheckQuestion, on_delete=models.PROTECT, related_name="answers")
    selected_option_ids = models.JSONField(default=list)
    number_given = models.FloatField(null=True, blank=True)  # a numeric question's answer
    # Snapshots, so the record reads the same even if an instructor edits the question later.
    prompt_text = models.TextField()
    selected_texts = models.JSONField(default=list)
    is_correct = models.BooleanField()

    class Meta:
        verbose_name = _("check answer")
        verbose_name_plural = _("check answers")
        ordering = ["attempt", "question__position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "question"], name="one_answer_per_question")
        ]

    def __str__(self) -> str:
        return f"{self.attempt} · {self.question.key} · {'right' if self.is_correct else 'wrong'}"


# --------------------------------------------------------------------------
# Translations of what learners read. English is the course itself (the rows above);
# a translation holds only texts, keyed by a Django language code ("zh-hans"), and a
# learner page shows it in place of the English where one exists
# (courses.selectors.content_translate). Progress, answers and grading stay on the
# English rows, so a learner's record is the same whichever language they read.


class CourseTranslation(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=15)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["course", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "language"], name="one_translation_per_course_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.course.slug} [{self.language}]"


class StageTranslation(models.Model):
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=15)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["stage", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "language"], name="one_translation_per_stage_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage} [{self.language}]"


class ModuleTranslation(models.Model):
    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=15)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    body_markdown = models.TextField(blank=True)
    body_html = models.TextField(blank=True, editable=False)
    # As on Module: an unpublished edit, shown only in the author's preview.
    draft_markdown = models.TextField(blank=True, editable=False)
    draft_html = models.TextField(blank=True, editable=False)
    draft_saved_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["module", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["module", "language"], name="one_translation_per_module_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.module} [{self.language}]"


class CheckQuestionTranslation(models.Model):
    question = models.ForeignKey(
        CheckQuestion, on_delete=models.CASCADE, related_name="translations"
    )
    language = models.CharField(max_length=15)
    prompt_markdown = models.TextField()
    prompt_html = models.TextField(blank=True, editable=False)
    # A numeric question's explanation; a multiple-choice one explains on each option.
    explanation_markdown = models.TextField(blank=True)
    explanation_html = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["question", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["question", "language"], name="one_translation_per_question_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.question} [{self.language}]"


class CheckOptionTranslation(models.Model):
    option = models.ForeignKey(CheckOption, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=15)
    text_markdown = models.TextField()
    text_html = models.TextField(blank=True, editable=False)
    explanation_markdown = models.TextField()
    explanation_html = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["option", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["option", "language"], name="one_translation_per_option_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.option} [{self.language}]"


class LanguagePreference(models.Model):
    """The interface language a person chose with the header's switcher.

    Kept apart from EmployeeProfile: instructors, HR and demo accounts often have no
    profile, and they choose a language too.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="language_preference",
        verbose_name=_("user"),
    )
    language = models.CharField(_("language"), max_length=15, choices=settings.LANGUAGES)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("language preference")
        verbose_name_plural = _("language preferences")

    def __str__(self) -> str:
        return f"{self.user}: {self.language}"

"""Reads of the curriculum, each applying who may see what."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import translation

from courses.authoring.parse import content_languages
from courses.draws import DrawnQuestion
from courses.models import (
    CheckAttempt,
    CheckOption,
    CheckOptionTranslation,
    CheckQuestion,
    CheckQuestionTranslation,
    Course,
    CourseTranslation,
    Enrollment,
    LanguagePreference,
    Module,
    ModuleTranslation,
    Stage,
    StageTranslation,
)
from courses.numeric import numeric_is_right


def can_preview_unpublished(user: User | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated and (user.is_superuser or user.has_perm("courses.change_course"))
    )


def course_list_visible(*, user: User | AnonymousUser) -> QuerySet[Course]:
    courses = Course.objects.all()
    return courses if can_preview_unpublished(user) else courses.filter(is_published=True)


def course_get_visible(*, user: User | AnonymousUser, slug: str) -> Course:
    """The course if this user may see it, else 404 (unpublished looks like unknown)."""
    try:
        return course_list_visible(user=user).get(slug=slug)
    except Course.DoesNotExist:
        raise Http404("No such course.") from None


def module_get_visible(*, user: User | AnonymousUser, course_slug: str, slug: str) -> Module:
    course = course_get_visible(user=user, slug=course_slug)
    try:
        return Module.objects.select_related("course", "stage").get(course=course, slug=slug)
    except Module.DoesNotExist:
        raise Http404("No such module in this course.") from None


def module_get_for_authoring(*, user: User | AnonymousUser, course_slug: str, slug: str) -> Module:
    """A module for someone who may edit it (its draft included), published course or not."""
    if not user.has_perm("courses.change_module"):
        raise Http404("No such module in this course.")
    try:
        return Module.objects.select_related("course", "stage").get(
            course__slug=course_slug, slug=slug
        )
    except Module.DoesNotExist:
        raise Http404("No such module in this course.") from None


def enrollment_get(*, learner: User, course: Course) -> Enrollment | None:
    return Enrollment.objects.filter(learner=learner, course=course).first()


def enrollment_list_for_learner(*, learner: User) -> QuerySet[Enrollment]:
    return (
        Enrollment.objects.filter(learner=learner, course__is_published=True)
        .select_related("course", "assigned_by")
        .order_by("completed_at", "due_date", "enrolled_at")
    )


def module_has_check(*, module: Module) -> bool:
    return module.questions.filter(retired_at__isnull=True).exists()


def check_questions(*, module: Module) -> list[CheckQuestion]:
    """The live questions of a module's knowledge check with their options (two queries)."""
    return list(
        module.questions.filter(retired_at__isnull=True)
        .order_by("position", "id")
        .prefetch_related(Prefetch("options", queryset=CheckOption.objects.order_by("position")))
    )


def check_attempt_latest(*, learner: User, module: Module) -> CheckAttempt | None:
    return CheckAttempt.objects.filter(learner=learner, module=module).first()


def check_feedback(*, drawn: list[DrawnQuestion], outcome: Any = None) -> list[dict[str, Any]]:
    """The check as the learner sees it, with feedback once they have answered.

    After a failed attempt only the chosen options explain themselves (so a
    retry still needs thought); after a pass every option does and the
    correct ones are marked.
    """
    selected = outcome.selected if outcome else {}
    numbers = outcome.numbers if outcome else {}
    passed = bool(outcome and outcome.attempt.passed)
    rows = []
    for number, shown in enumerate(drawn, start=1):
        question, options = shown.question, shown.options
        if question.numeric_value is not None:
            given = numbers.get(question.pk)
            rows.append(
                {
                    "number": number,
                    "question": question,
                    "numeric": True,
                    "given": "" if given is None else f"{given:g}",
                    "answered": bool(outcome),
                    "is_correct": bool(outcome)
                    and given is not None
                    and numeric_is_right(question, given),
                    # The explanation works the number out: shown only once passed.
                    "explain": passed,
                }
            )
            continue
        chosen = set(selected.get(question.pk, []))
        correct = {o.pk for o in options if o.is_correct}
        rows.append(
            {
                "number": number,
                "question": question,
                "multiple": len(correct) > 1,
                "answered": bool(outcome),
                "is_correct": bool(outcome) and chosen == correct,
                "options": [
                    {
                        "option": option,
                        "selected": option.pk in chosen,
                        "verdict": (
                            ("right" if option.is_correct else "wrong")
                            if option.pk in chosen
                            else ("missed" if passed and option.is_correct else "")
                        ),
                        "explain": option.pk in chosen or passed,
                    }
                    for option in options
                ],
            }
        )
    return rows


def content_language() -> str | None:
    """The language to show course texts in: the active one (Django's get_language(), set by
    the locale middleware from the learner's choice) when courses may be translated into
    it, else None, which is the English."""
    language = (translation.get_language() or "").lower()
    return language if language in content_languages() else None


def content_translate(
    *,
    courses: Iterable[Course] = (),
    stages: Iterable[Stage] = (),
    modules: Iterable[Module] = (),
    questions: Iterable[CheckQuestion] = (),
    drafts: bool = False,
) -> None:
    """Show these rows in the learner's language: each text that has a translation is put
    in place of the English on the instance (for display only; nothing is saved, and a
    page that saves reads its rows afresh). A text without one stays English.

    The one place learner pages look translations up: one query per kind of row given,
    whatever their number, and none in English. The options of `questions` are the ones
    prefetched on them (check_questions). `drafts`: an author's preview, which shows a
    translation's unpublished draft as it shows the English one's."""
    language = content_language()
    if language is None:
        return
    by_course = _group(courses)
    for course_text in CourseTranslation.objects.filter(course__in=by_course, language=language):
        for course in by_course[course_text.course_id]:
            course.title, course.summary = course_text.title, course_text.summary
    by_stage = _group(stages)
    for stage_text in StageTranslation.objects.filter(stage__in=by_stage, language=language):
        for stage in by_stage[stage_text.stage_id]:
            stage.title, stage.summary = stage_text.title, stage_text.summary
    by_module = _group(modules)
    for module_text in ModuleTranslation.objects.filter(module__in=by_module, language=language):
        for module in by_module[module_text.module_id]:
            module.title, module.summary = module_text.title, module_text.summary
            module.body_markdown, module.body_html = (
                module_text.body_markdown,
                module_text.body_html,
            )
            if drafts and module_text.draft_saved_at:
                module.body_html = module_text.draft_html
    by_question = _group(questions)
    for question_text in CheckQuestionTranslation.objects.filter(
        question__in=by_question, language=language
    ):
        for question in by_question[question_text.question_id]:
            question.prompt_markdown = question_text.prompt_markdown
            question.prompt_html = question_text.prompt_html
            if question_text.explanation_markdown:
                question.explanation_markdown = question_text.explanation_markdown
                question.explanation_html = question_text.explanation_html
    by_option = _group(o for qs in by_question.values() for q in qs for o in q.options.all())
    for option_text in CheckOptionTranslation.objects.filter(
        option__in=by_option, language=language
    ):
        for option in by_option[option_text.option_id]:
            option.text_markdown, option.text_html = (
                option_text.text_markdown,
                option_text.text_html,
            )
            option.explanation_markdown = option_text.explanation_markdown
            option.explanation_html = option_text.explanation_html


def _group(rows: Iterable[Any]) -> dict[int, list[Any]]:
    """Rows by id: a page may hold the same row twice (the module and its place in the map)."""
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.pk, []).append(row)
    return grouped


def language_preference_of(*, user: User) -> str | None:
    """The interface language this person saved, if any (and if the site still offers it)."""
    language = (
        LanguagePreference.objects.filter(user=user).values_list("language", flat=True).first()
    )
    return language if language in dict(settings.LANGUAGES) else None

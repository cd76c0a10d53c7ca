"""Writes to the curriculum. Each function owns its transaction."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from academy.refusals import Refusal
from courses.authoring.parse import (
    CheckSpec,
    CourseSpec,
    ModuleSpec,
    ModuleTranslationSpec,
    QuestionSpec,
    QuestionTextSpec,
    canonical_body,
    canonical_text,
    numeric_fingerprint,
    question_fingerprint,
    unwrap_paragraph,
)
from courses.draws import DrawError, DrawnQuestion, draw_ids, draw_in_order, draw_read
from courses.models import (
    CheckAnswer,
    CheckAttempt,
    CheckOption,
    CheckOptionTranslation,
    CheckQuestion,
    CheckQuestionTranslation,
    Course,
    CourseTranslation,
    Department,
    EmployeeProfile,
    Enrollment,
    LanguagePreference,
    Module,
    ModuleTranslation,
    Stage,
    StageTranslation,
)
from courses.numeric import numeric_is_right
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
    # Imported, but worth a look (look-alike labels in a dataset).
    warnings: list[str] = field(default_factory=list)
    # Translation files not imported (their modules stay in English), each with its reason.
    translations_refused: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        out = [
            f"Course '{self.course.slug}': {len(self.created)} created, "
            f"{len(self.updated)} updated, {len(self.unchanged)} unchanged."
        ]
        out += [f"  + {name}" for name in self.created]
        out += [f"  ~ {name}" for name in self.updated]
        out += [
            f"  ! {name} is in the database but not in the folder (kept)"
            for name in self.not_in_folder
        ]
        out += [f"  ! warning: {warning}" for warning in self.warnings]
        out += [
            f"  ! translation refused (learners read this in English): {problem}"
            for problem in self.translations_refused
        ]
        return out


@transaction.atomic
def course_import_spec(*, spec: CourseSpec) -> ImportReport:
    """Create or update a course's own part (stages, modules, checks); idempotent.

    A course folder is imported whole by `labs.services.authoring.course_folder_import`,
    which calls this and then writes the datasets and labs in the same transaction.
    """
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
                report,
                course=course,
                stage=stage,
                spec=module_spec,
                position=module_position,
                existing=existing_modules.pop(module_spec.slug, None),
            )
    report.not_in_folder = sorted(existing_modules)
    _course_translations_sync(report, course=course, spec=spec)
    report.translations_refused = [str(problem) for problem in spec.translation_problems]
    # Parts of an import write with update() and bulk_create(), which bump no
    # updated_at: one touch here covers them all.
    course_content_changed(course=course)
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
        "check_pass_mark": spec.check.pass_mark if spec.check else 100,
        "check_max_attempts": spec.check.max_attempts if spec.check else None,
        "check_draw_count": spec.check.draw_count if spec.check else None,
        "check_cooldown_minutes": spec.check.cooldown_minutes if spec.check else 0,
    }
    if existing is None:
        module = Module.objects.create(course=course, slug=spec.slug, **fields)
        report.created.append(f"module {spec.slug}")
    elif _assign(existing, **fields):
        module = existing
        module.save()
        report.updated.append(f"module {spec.slug}")
    else:
        module = existing
        report.unchanged.append(f"module {spec.slug}")
    outcome = check_sync(module=module, check=spec.check)
    if outcome:
        report.updated.append(f"check {spec.slug}: {outcome}")
    _module_translations_sync(report, module=module, translations=spec.translations)


def _upsert(model: type[Any], *, lookup: dict[str, Any], fields: dict[str, Any]) -> str:
    """Create or update one row; say which ('' when it already matched)."""
    row = model.objects.filter(**lookup).first()
    if row is None:
        model.objects.create(**lookup, **fields)
        return "created"
    if _assign(row, **fields):
        row.save()
        return "updated"
    return ""


def _course_translations_sync(report: ImportReport, *, course: Course, spec: CourseSpec) -> None:
    """The folder is the truth for translations as for the English: a language it no longer
    has (or whose file was refused) is removed, and learners read that part in English."""
    removed, _ = (
        CourseTranslation.objects.filter(course=course)
        .exclude(language__in=list(spec.translations))
        .delete()
    )
    StageTranslation.objects.filter(stage__course=course).exclude(
        language__in=list(spec.translations)
    ).delete()
    if removed:
        report.updated.append(f"course {course.slug}: translation(s) removed")
    stages = {stage.slug: stage for stage in course.stages.all()}
    for language, translation in spec.translations.items():
        outcomes = [
            _upsert(
                CourseTranslation,
                lookup={"course": course, "language": language},
                fields={"title": translation.title, "summary": translation.summary},
            )
        ]
        for slug, (title, summary) in translation.stages.items():
            outcomes.append(
                _upsert(
                    StageTranslation,
                    lookup={"stage": stages[slug], "language": language},
                    fields={"title": title, "summary": summary},
                )
            )
        _report_translation(report, f"course {course.slug}", language, outcomes)


def _report_translation(
    report: ImportReport, what: str, language: str, outcomes: list[str]
) -> None:
    if outcomes[0] == "created":
        report.created.append(f"translation {language} of {what}")
    elif any(outcomes):
        report.updated.append(f"translation {language} of {what}")


def _module_translations_sync(
    report: ImportReport, *, module: Module, translations: Mapping[str, ModuleTranslationSpec]
) -> None:
    removed, _ = module.translations.exclude(language__in=list(translations)).delete()
    CheckQuestionTranslation.objects.filter(question__module=module).exclude(
        language__in=list(translations)
    ).delete()
    CheckOptionTranslation.objects.filter(option__question__module=module).exclude(
        language__in=list(translations)
    ).delete()
    if removed:
        report.updated.append(f"module {module.slug}: translation(s) removed")
    live = {
        q.key: q
        for q in module.questions.filter(retired_at__isnull=True).prefetch_related("options")
    }
    for language, translation in translations.items():
        outcomes = [
            _upsert(
                ModuleTranslation,
                lookup={"module": module, "language": language},
                fields={
                    "title": translation.title,
                    "summary": translation.summary,
                    "body_markdown": translation.body_markdown,
                    "body_html": translation.body_html,
                },
            )
        ]
        for text in translation.questions:
            outcomes += _question_translation_sync(live[text.key], language=language, text=text)
        _report_translation(report, f"module {module.slug}", language, outcomes)


def _question_translation_sync(
    question: CheckQuestion, *, language: str, text: QuestionTextSpec
) -> list[str]:
    outcomes = [
        _upsert(
            CheckQuestionTranslation,
            lookup={"question": question, "language": language},
            fields={
                "prompt_markdown": text.prompt_markdown,
                "prompt_html": text.prompt_html,
                "explanation_markdown": text.explanation_markdown,
                "explanation_html": text.explanation_html,
            },
        )
    ]
    # The parser held the translation to the English options' number and order.
    for option, option_text in zip(question.options.all(), text.options, strict=True):
        outcomes.append(
            _upsert(
                CheckOptionTranslation,
                lookup={"option": option, "language": language},
                fields={
                    "text_markdown": option_text.text_markdown,
                    "text_html": option_text.text_html,
                    "explanation_markdown": option_text.explanation_markdown,
                    "explanation_html": option_text.explanation_html,
                },
            )
        )
    return outcomes


def check_sync(*, module: Module, check: CheckSpec | None) -> str:
    """Make a module's live questions match its front matter; say what changed ('' if nothing).

    Learners' answers are never lost: a question that is unchanged (same
    prompt, options and correct ones) keeps its row, so its answers still
    count; a changed question that was answered is retired and replaced; one
    that was never answered is updated in place. Explanations are not part of
    what a learner answered, so fixing one is an in-place update.
    """
    wanted = check.questions if check else []
    live = {
        q.key: q
        for q in module.questions.filter(retired_at__isnull=True).prefetch_related("options")
    }
    answered = set(
        CheckAnswer.objects.filter(question__in=live.values()).values_list("question_id", flat=True)
    )
    now = timezone.now()
    counts = {"added": 0, "replaced": 0, "edited": 0, "removed": 0}
    leaving = [q for key, q in live.items() if key not in {w.key for w in wanted}]
    for question in leaving:
        if question.pk in answered:
            CheckQuestion.objects.filter(pk=question.pk).update(retired_at=now)
        else:
            question.delete()
        counts["removed"] += 1
    for position, spec in enumerate(wanted, start=1):
        if spec.key not in live:
            _question_create(module=module, spec=spec, position=position)
            counts["added"] += 1
            continue
        question = live[spec.key]
        if question.fingerprint == spec.fingerprint:
            if _question_refresh_texts(question, spec=spec, position=position):
                counts["edited"] += 1
        elif question.pk in answered:
            CheckQuestion.objects.filter(pk=question.pk).update(retired_at=now)
            _question_create(module=module, spec=spec, position=position)
            counts["replaced"] += 1
        else:
            question.delete()
            _question_create(module=module, spec=spec, position=position)
            counts["edited"] += 1
    return ", ".join(f"{n} question(s) {what}" for what, n in counts.items() if n)


def _question_create(*, module: Module, spec: QuestionSpec, position: int) -> CheckQuestion:
    question = CheckQuestion.objects.create(
        module=module,
        key=spec.key,
        position=position,
        prompt_markdown=spec.prompt_markdown,
        prompt_html=spec.prompt_html,
        fingerprint=spec.fingerprint,
        numeric_value=spec.numeric.value if spec.numeric else None,
        numeric_tolerance=spec.numeric.tolerance if spec.numeric else None,
        explanation_markdown=spec.numeric.explanation_markdown if spec.numeric else "",
        explanation_html=spec.numeric.explanation_html if spec.numeric else "",
    )
    CheckOption.objects.bulk_create(
        CheckOption(
            question=question,
            position=index,
            text_markdown=option.text_markdown,
            text_html=option.text_html,
            is_correct=option.correct,
            explanation_markdown=option.explanation_markdown,
            explanation_html=option.explanation_html,
        )
        for index, option in enumerate(spec.options, start=1)
    )
    return question


def _question_refresh_texts(question: CheckQuestion, *, spec: QuestionSpec, position: int) -> bool:
    """Same question for the learner: update position, rendering and explanations in place."""
    changed = False
    explained = spec.numeric or question  # a numeric question carries its own explanation
    if _assign(
        question,
        position=position,
        prompt_html=spec.prompt_html,
        explanation_markdown=explained.explanation_markdown,
        explanation_html=explained.explanation_html,
    ):
        question.save(
            update_fields=["position", "prompt_html", "explanation_markdown", "explanation_html"]
        )
        changed = True
    for option, option_spec in zip(question.options.all(), spec.options, strict=True):
        if _assign(
            option,
            text_html=option_spec.text_html,
            explanation_markdown=option_spec.explanation_markdown,
            explanation_html=option_spec.explanation_html,
        ):
            option.save(update_fields=["text_html", "explanation_markdown", "explanation_html"])
            changed = True
    return changed


def question_render(*, question: CheckQuestion) -> CheckQuestion:
    """After an edit in the admin: render the prompt and options once and refresh the fingerprint."""
    options = list(question.options.all())
    question.prompt_markdown = canonical_text(question.prompt_markdown)
    question.prompt_html = render_markdown(question.prompt_markdown).html
    if question.numeric_value is not None:
        question.fingerprint = numeric_fingerprint(
            question.prompt_markdown, question.numeric_value, question.numeric_tolerance or 0.0
        )
    else:
        question.fingerprint = question_fingerprint(
            question.prompt_markdown, [(o.text_markdown, o.is_correct) for o in options]
        )
    question.explanation_markdown = canonical_text(question.explanation_markdown)
    question.explanation_html = (
        render_markdown(question.explanation_markdown).html if question.explanation_markdown else ""
    )
    question.save(
        update_fields=[
            "prompt_markdown",
            "prompt_html",
            "fingerprint",
            "explanation_markdown",
            "explanation_html",
        ]
    )
    for option in options:
        option.text_markdown = canonical_text(option.text_markdown)
        option.explanation_markdown = canonical_text(option.explanation_markdown)
        option.text_html = unwrap_paragraph(render_markdown(option.text_markdown).html)
        option.explanation_html = render_markdown(option.explanation_markdown).html
        option.save(
            update_fields=["text_markdown", "explanation_markdown", "text_html", "explanation_html"]
        )
    return question


class CheckAnswerError(Refusal):
    """Answers that cannot be graded as sent; the message is shown to the learner."""


class CheckRetryRefused(Refusal):
    """An attempt the check's retry rules do not allow yet (or at all)."""

    status = 429


def check_retry_refusal(
    *, module: Module, latest: CheckAttempt | None, now: datetime.datetime
) -> str | None:
    """Why a learner whose newest attempt is `latest` may not attempt `module`'s check at
    `now`, or None if they may.

    The one statement of the retry rules (the service enforces it, the page shows it): a
    cap on attempts, and a cool-down after a failed attempt. Attempts are numbered 1, 2, 3
    per learner and module, so the newest one's number is the count.
    """
    cap = module.check_max_attempts
    if latest is None:
        return None
    if cap is not None and latest.number >= cap:
        return ngettext(
            "You have used the %(cap)d attempt this knowledge check allows; ask your "
            "instructor if you need another.",
            "You have used all %(cap)d attempts this knowledge check allows; ask your "
            "instructor if you need another.",
            cap,
        ) % {"cap": cap}
    if latest.passed or not module.check_cooldown_minutes:
        return None
    opens = latest.submitted_at + datetime.timedelta(minutes=module.check_cooldown_minutes)
    if now >= opens:
        return None
    local = timezone.localtime(opens)
    when = date_format(local, _("H:i \\o\\n j M Y (T)"))
    return ngettext(
        "This knowledge check asks you to wait %(minutes)d minute after a failed attempt: "
        "your next attempt opens at %(when)s. Reread the lesson meanwhile.",
        "This knowledge check asks you to wait %(minutes)d minutes after a failed attempt: "
        "your next attempt opens at %(when)s. Reread the lesson meanwhile.",
        module.check_cooldown_minutes,
    ) % {"minutes": module.check_cooldown_minutes, "when": when}


@dataclass(frozen=True)
class CheckOutcome:
    attempt: CheckAttempt
    # question id -> the option ids the learner chose
    selected: dict[int, list[int]]
    # question id -> the number typed, for numeric questions
    numbers: dict[int, float] = field(default_factory=dict)


def check_attempt_record(
    *,
    learner: User,
    module: Module,
    answers: Mapping[int, Sequence[int]],
    draw_token: str | None = None,
    numbers: Mapping[int, float] | None = None,
) -> CheckOutcome:
    """Grade and store one attempt at a module's knowledge check (all or nothing).

    Whether the learner may answer (the module is open) is the caller's rule:
    `grading.services.check_attempt_submit` checks it and records progress.
    """
    with transaction.atomic():
        latest = CheckAttempt.objects.filter(learner=learner, module=module).first()
        refusal = check_retry_refusal(module=module, latest=latest, now=timezone.now())
        if refusal:
            raise CheckRetryRefused(refusal)
        live = list(module.questions.filter(retired_at__isnull=True).prefetch_related("options"))
        if not live:
            raise CheckAnswerError(_("This module has no knowledge check."))
        drawn = _drawn_for(learner=learner, module=module, live=live, token=draw_token)
        questions = [d.question for d in drawn]
        by_id = {q.pk: q for q in questions}
        numbers = numbers or {}
        foreign = sorted((set(answers) | set(numbers)) - set(by_id))
        undrawn = [pk for pk in foreign if pk in {q.pk for q in live}]
        if undrawn:
            raise CheckAnswerError(
                _(
                    "Question #%(id)s was not among the questions drawn for this attempt; "
                    "reload the page and answer again."
                )
                % {"id": undrawn[0]}
            )
        if foreign:
            stale = CheckQuestion.objects.filter(pk__in=foreign, module=module).exists()
            if stale:
                raise CheckAnswerError(
                    _(
                        "This knowledge check has changed since you opened the page. "
                        "Reload the page and answer again."
                    )
                )
            raise CheckAnswerError(
                _("Question #%(id)s is not part of this module's knowledge check.")
                % {"id": foreign[0]}
            )
        if not any(answers.get(q.pk) or q.pk in numbers for q in questions):
            # Naming "question 1" would suggest the rest were answered.
            raise CheckAnswerError(
                _(
                    "None of the %(count)d questions has an answer yet: choose an answer "
                    "for each one, then submit."
                )
                % {"count": len(questions)}
                if len(questions) > 1
                else _("The question has no answer yet: choose one, then submit.")
            )
        for number, question in enumerate(questions, start=1):
            chosen = list(answers.get(question.pk) or [])
            if question.numeric_value is not None:
                if chosen:
                    raise CheckAnswerError(
                        _("Question %(number)d takes a number, not options.") % {"number": number}
                    )
                if question.pk not in numbers:
                    raise CheckAnswerError(
                        _(
                            "Answer every question before submitting: question %(number)d has "
                            "no number."
                        )
                        % {"number": number}
                    )
                continue
            if question.pk in numbers:
                raise CheckAnswerError(
                    _("Question %(number)d takes options, not a number.") % {"number": number}
                )
            options = {o.pk: o for o in question.options.all()}
            if not chosen:
                raise CheckAnswerError(
                    _("Answer every question before submitting: question %(number)d has no answer.")
                    % {"number": number}
                )
            unknown = [pk for pk in chosen if pk not in options]
            if unknown:
                raise CheckAnswerError(
                    _("Option #%(option)s is not an option of question %(number)d.")
                    % {"option": unknown[0], "number": number}
                )
            if len(set(chosen)) != len(chosen):
                raise CheckAnswerError(
                    _("Question %(number)d lists the same option twice.") % {"number": number}
                )
            if len(chosen) > 1 and sum(o.is_correct for o in options.values()) == 1:
                raise CheckAnswerError(
                    _("Question %(number)d takes one answer; you sent %(sent)d.")
                    % {"number": number, "sent": len(chosen)}
                )
        selected = {q.pk: sorted(answers.get(q.pk) or []) for q in questions}
        verdicts = {
            q.pk: numeric_is_right(q, numbers[q.pk])
            if q.numeric_value is not None
            else set(selected[q.pk]) == {o.pk for o in q.options.all() if o.is_correct}
            for q in questions
        }
        correct = sum(verdicts.values())
        score = round(100 * correct / len(questions))
        # The caller holds the learner's progress row for this module (select_for_update),
        # which serialises attempts; the unique constraint backs the numbering up.
        number = CheckAttempt.objects.filter(learner=learner, module=module).count() + 1
        attempt = CheckAttempt.objects.create(
            learner=learner,
            module=module,
            number=number,
            correct_count=correct,
            question_count=len(questions),
            score=score,
            pass_mark=module.check_pass_mark,
            passed=score >= module.check_pass_mark,
            draw=draw_ids(drawn),
        )
        CheckAnswer.objects.bulk_create(
            CheckAnswer(
                attempt=attempt,
                question=q,
                selected_option_ids=selected[q.pk],
                number_given=numbers.get(q.pk),
                prompt_text=q.prompt_markdown.strip(),
                is_correct=verdicts[q.pk],
                selected_texts=[f"{numbers[q.pk]:g}"]
                if q.pk in numbers
                else [o.text_markdown.strip() for o in q.options.all() if o.pk in selected[q.pk]],
            )
            for q in questions
        )
    return CheckOutcome(attempt=attempt, selected=selected, numbers=dict(numbers))


def _drawn_for(
    *, learner: User, module: Module, live: list[CheckQuestion], token: str | None
) -> list[DrawnQuestion]:
    """The questions this submission answers: the signed draw its page showed, or, when
    the check draws every question and no draw was sent, all of them in order."""
    if token:
        try:
            return draw_read(token, learner_id=learner.pk, module=module, questions=live)
        except DrawError as exc:
            raise CheckAnswerError(str(exc)) from exc
    if module.check_draw_count and module.check_draw_count < len(live):
        raise CheckAnswerError(
            _(
                "This check draws its questions for each attempt, and the form did not say "
                "which it showed; reload the page and answer again."
            )
        )
    return draw_in_order(live)


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
    course_content_changed(course=module.course_id)
    return module


def module_draft_save(*, module: Module, body_markdown: str) -> Module:
    """Keep an edit of the lesson as a draft: rendered now for the preview, invisible to
    learners (body_html is untouched) until the admin's "Save" publishes it."""
    module.draft_markdown = body_markdown
    module.draft_html = render_markdown(body_markdown).html
    module.draft_saved_at = timezone.now()
    module.save(update_fields=["draft_markdown", "draft_html", "draft_saved_at", "updated_at"])
    return module


def module_translation_save(*, translation: ModuleTranslation, draft: bool) -> ModuleTranslation:
    """Store a translation edited in the admin, its body rendered once. As for the English
    body (module_draft_save), a draft is kept for the preview and learners go on reading the
    published translation until "Save"; a new translation has nothing published yet, so it
    is published at once."""
    body = canonical_body(translation.body_markdown)
    if draft and translation.pk:
        translation.draft_markdown = body
        translation.draft_html = render_markdown(body).html
        translation.draft_saved_at = timezone.now()
        translation.body_markdown, translation.body_html = ModuleTranslation.objects.values_list(
            "body_markdown", "body_html"
        ).get(pk=translation.pk)
    else:
        translation.body_markdown = body
        translation.body_html = render_markdown(body).html
        translation.draft_markdown = translation.draft_html = ""
        translation.draft_saved_at = None
    translation.save()
    return translation


def check_translation_render(
    *, translation: CheckQuestionTranslation | CheckOptionTranslation
) -> None:
    """After an edit in the admin: a question's or option's translated texts rendered once."""
    if isinstance(translation, CheckQuestionTranslation):
        translation.prompt_markdown = canonical_text(translation.prompt_markdown)
        translation.prompt_html = render_markdown(translation.prompt_markdown).html
    else:
        translation.text_markdown = canonical_text(translation.text_markdown)
        translation.text_html = unwrap_paragraph(render_markdown(translation.text_markdown).html)
    explanation = translation.explanation_markdown
    translation.explanation_markdown = canonical_text(explanation) if explanation.strip() else ""
    translation.explanation_html = (
        render_markdown(translation.explanation_markdown).html
        if translation.explanation_markdown
        else ""
    )
    translation.save()


def course_set_published(*, course: Course, published: bool) -> Course:
    course.is_published = published
    course.save(update_fields=["is_published", "updated_at"])
    return course


def course_content_changed(*, course: Course | int) -> None:
    """Record that something a learner's page shows of this course changed (the course,
    a stage, module, question or option): cached learner pages are keyed on the course's
    `updated_at` (web/pagecache.py) and miss from now on."""
    course_id = course if isinstance(course, int) else course.pk
    Course.objects.filter(pk=course_id).update(updated_at=timezone.now())


def enrollment_create(
    *,
    learner: User,
    course: Course,
    assigned_by: User | None = None,
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
        ("courses", "checkquestion", ["add", "change", "delete", "view"]),
        ("courses", "checkoption", ["add", "change", "delete", "view"]),
        ("courses", "coursetranslation", ["add", "change", "delete", "view"]),
        ("courses", "stagetranslation", ["add", "change", "delete", "view"]),
        ("courses", "moduletranslation", ["add", "change", "delete", "view"]),
        ("courses", "checkquestiontranslation", ["add", "change", "delete", "view"]),
        ("courses", "checkoptiontranslation", ["add", "change", "delete", "view"]),
        ("courses", "checkattempt", ["view"]),
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
        ("courses", "checkattempt", ["view"]),
        ("courses", "checkanswer", ["view"]),
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
        group, _created = Group.objects.get_or_create(name=group_name)
        permissions = [
            Permission.objects.get(content_type__app_label=app, codename=f"{action}_{model}")
            for app, model, actions in grants
            for action in actions
        ]
        group.permissions.set(permissions)


@transaction.atomic
def user_roles_set(*, user: User, roles: Collection[str]) -> None:
    """Make `user` hold exactly `roles` of the academy's roles; other groups stay as they are.

    The admin's door (is_staff) follows: a role opens it, no role closes it unless the user
    is a superuser, so a role taken away at the source takes the admin away too."""
    from django.contrib.auth.models import Group

    unknown = set(roles) - set(ROLE_PERMISSIONS)
    if unknown:
        raise ValueError(f"not an academy role: {sorted(unknown)}")
    groups = list(Group.objects.filter(name__in=ROLE_PERMISSIONS))
    if len(groups) < len(ROLE_PERMISSIONS):
        roles_sync()
        groups = list(Group.objects.filter(name__in=ROLE_PERMISSIONS))
    user.groups.remove(*[group for group in groups if group.name not in roles])
    user.groups.add(*[group for group in groups if group.name in roles])
    staff = bool(roles) or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])


def department_slug(name: str, *, taken: Callable[[str], bool]) -> str:
    """A new department's slug: its name's, with -2, -3… while `taken` says it is in use.
    The one rule, for a department made at sign-in and for those an import makes in bulk."""
    base = slugify(name)[:100] or "department"
    slug, suffix = base, 2
    while taken(slug):
        slug, suffix = f"{base}-{suffix}", suffix + 1
    return slug


def department_for_name(name: str) -> Department:
    """The department called `name` (any case), created when there is none yet."""
    existing = Department.objects.filter(name__iexact=name).first()
    if existing is not None:
        return existing
    slug = department_slug(name, taken=lambda s: Department.objects.filter(slug=s).exists())
    try:
        with transaction.atomic():
            return Department.objects.create(name=name, slug=slug)
    except IntegrityError:  # made by a concurrent sign-in or import a moment ago
        return Department.objects.get(name__iexact=name)


@transaction.atomic
def employee_profile_update(
    *,
    user: User,
    employee_id: str,
    department_name: str | None = None,
    manager_employee_id: str | None = None,
) -> EmployeeProfile:
    """Record who `user` is in the employee directory: their id, department and manager.

    One person's directory entry, as single sign-on's claims bring it (an import writes
    thousands in bulk: grading.reports.directory). None leaves a field as it is; "" clears it. A department not seen before is
    created. The manager is named by their employee id; one the academy does not know yet
    is left unset until this person's next update.
    """
    profile = EmployeeProfile.objects.filter(user=user).first() or EmployeeProfile(user=user)
    profile.employee_id = employee_id
    if department_name is not None:
        profile.department = department_for_name(department_name) if department_name else None
    if manager_employee_id is not None:
        profile.manager = (
            User.objects.filter(profile__employee_id=manager_employee_id)
            .exclude(pk=user.pk)
            .first()
            if manager_employee_id
            else None
        )
    profile.save()
    return profile


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
    engineering, _created = Department.objects.get_or_create(
        slug="engineering", defaults={"name": "Engineering"}
    )
    support, _created = Department.objects.get_or_create(
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
                username=username,
                password=password,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
                is_staff=is_staff,
            )
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
                learner=learner,
                course=course,
                assigned_by=hr,
                due_date=timezone.localdate() + datetime.timedelta(days=30),
            )
    return created


class LanguageRefused(Refusal):
    pass


def language_check(language: str) -> str:
    """The language code if the site offers it; a refusal naming it otherwise."""
    if language not in dict(settings.LANGUAGES):
        raise LanguageRefused(
            _("“%(language)s” is not a language of this site; choose one from the list.")
            % {"language": language[:20]}
        )
    return language


def language_preference_set(*, user: User, language: str) -> LanguagePreference:
    """Save the interface language this person chose; it follows them to every device."""
    language_check(language)
    preference, _created = LanguagePreference.objects.update_or_create(
        user=user, defaults={"language": language}
    )
    return preference

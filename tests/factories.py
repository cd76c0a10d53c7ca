from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from courses.models import Course, Department, Enrollment, Module, Stage
from courses.rendering import render_markdown


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"Department {n}")
    slug = factory.Sequence(lambda n: f"department-{n}")


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course

    slug = factory.Sequence(lambda n: f"course-{n}")
    title = factory.Sequence(lambda n: f"Course {n}")
    summary = "A course."
    is_published = True


class StageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stage

    course = factory.SubFactory(CourseFactory)
    slug = factory.Sequence(lambda n: f"stage-{n}")
    title = factory.Sequence(lambda n: f"Stage {n}")
    position = factory.Sequence(lambda n: n)


class ModuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Module

    stage = factory.SubFactory(StageFactory)
    course = factory.SelfAttribute("stage.course")
    slug = factory.Sequence(lambda n: f"module-{n}")
    title = factory.Sequence(lambda n: f"Module {n}")
    kind = Module.Kind.THEORY
    position = factory.Sequence(lambda n: n)
    body_markdown = "Some *lesson* text with $x^2$."
    body_html = factory.LazyAttribute(lambda m: render_markdown(m.body_markdown).html)


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    learner = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)


def make_check(
    module: Module, questions: list[tuple[str, list[tuple[str, bool]]]], *, pass_mark: int = 100
) -> list:
    """A knowledge check on `module`: [(prompt, [(option text, correct), ...]), ...]."""
    from courses.models import CheckOption, CheckQuestion
    from courses.services import question_render

    module.check_pass_mark = pass_mark
    module.save(update_fields=["check_pass_mark"])
    made = []
    for position, (prompt, options) in enumerate(questions, start=module.questions.count() + 1):
        question = CheckQuestion.objects.create(
            module=module, key=f"q{position}", position=position, prompt_markdown=prompt
        )
        for index, (text, correct) in enumerate(options, start=1):
            CheckOption.objects.create(
                question=question,
                position=index,
                text_markdown=text,
                is_correct=correct,
                explanation_markdown=f"Because {text.lower()} is {'right' if correct else 'wrong'}.",
            )
        made.append(question_render(question=question))
    return made


def check_answers(module: Module, *, right: bool = True) -> dict[int, list[int]]:
    """Answers to a module's live check: all right, or one wrong option per question."""
    answers = {}
    for question in module.questions.filter(retired_at__isnull=True):
        if question.numeric_value is not None:
            continue  # typed, not chosen: see complete_module
        options = list(question.options.all())
        if right:
            answers[question.pk] = [o.pk for o in options if o.is_correct]
        else:
            answers[question.pk] = [next(o.pk for o in options if not o.is_correct)]
    return answers


def complete_module(*, learner, module: Module) -> None:
    """Complete a theory or case-study module the way a learner would: pass its check, if any."""
    from courses.draws import draw_new, draw_sign
    from courses.selectors import check_questions
    from grading.services import check_attempt_submit, module_mark_complete

    questions = check_questions(module=module)
    if questions:
        # As the page does: draw, then answer what was drawn (numbers typed, options chosen).
        drawn = draw_new(module=module, questions=questions)
        answers = check_answers(module)
        shown = {d.question.pk for d in drawn}
        check_attempt_submit(
            learner=learner,
            module=module,
            answers={pk: ids for pk, ids in answers.items() if pk in shown},
            numbers={
                d.question.pk: d.question.numeric_value
                for d in drawn
                if d.question.numeric_value is not None
            },
            draw_token=draw_sign(learner_id=learner.pk, module=module, drawn=drawn),
        )
    else:
        module_mark_complete(learner=learner, module=module)

"""What one attempt at a knowledge check shows: which questions, and each one's option order.

A learner who always sees the options in the author's order learns positions, and one
who always gets the same questions can eliminate wrong options across retries. So each
time the check is shown, `draw_new` picks the module's `check_draw_count` questions
(all of them when it is not set) and shuffles every question's options. The page carries
the draw in a signed field (`draw_sign`); the submission reads it back (`draw_read`),
which refuses a tampered or stale one, and the attempt stores it, so the record shows
the questions and options in the order the learner saw them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.core import signing

from courses.models import CheckOption, CheckQuestion, Module

SALT = "courses.check-draw"

# Draws come from the operating system's generator: nothing a learner knows predicts one.
_random = random.SystemRandom()


@dataclass(frozen=True)
class DrawnQuestion:
    question: CheckQuestion
    options: list[CheckOption]


class DrawError(ValueError):
    """A draw sent back that is not one this page could have shown now."""


def draw_new(*, module: Module, questions: list[CheckQuestion]) -> list[DrawnQuestion]:
    """A fresh draw from the live `questions` (with their options prefetched)."""
    count = module.check_draw_count or len(questions)
    chosen = set(q.pk for q in _random.sample(questions, min(count, len(questions))))
    drawn = []
    for question in questions:  # the author's question order; only the options shuffle
        if question.pk in chosen:
            options = list(question.options.all())
            _random.shuffle(options)
            drawn.append(DrawnQuestion(question, options))
    return drawn


def draw_in_order(questions: list[CheckQuestion]) -> list[DrawnQuestion]:
    """Every question with its options in the author's order (a check with no draw sent)."""
    return [DrawnQuestion(q, list(q.options.all())) for q in questions]


def draw_ids(drawn: list[DrawnQuestion]) -> list[list[int | list[int]]]:
    """The draw as stored with an attempt: [[question id, [option ids as shown]], ...]."""
    return [[d.question.pk, [o.pk for o in d.options]] for d in drawn]


def draw_sign(*, learner_id: int, module: Module, drawn: list[DrawnQuestion]) -> str:
    return signing.dumps({"u": learner_id, "m": module.pk, "d": draw_ids(drawn)}, salt=SALT)


def draw_read(
    token: str, *, learner_id: int, module: Module, questions: list[CheckQuestion]
) -> list[DrawnQuestion]:
    """The draw a page showed, checked against the module's live `questions`."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise DrawError("The knowledge check's form was altered; reload the page.") from exc
    if data.get("u") != learner_id or data.get("m") != module.pk:
        raise DrawError("This form belongs to another knowledge check; reload the page.")
    by_id = {q.pk: q for q in questions}
    drawn = []
    for question_id, option_ids in data["d"]:
        question = by_id.get(question_id)
        options = {o.pk: o for o in question.options.all()} if question else {}
        if question is None or sorted(option_ids) != sorted(options):
            raise DrawError(
                "This knowledge check has changed since you opened the page. "
                "Reload the page and answer again."
            )
        drawn.append(DrawnQuestion(question, [options[pk] for pk in option_ids]))
    return drawn


def draw_replay(stored: list, questions: dict[int, CheckQuestion]) -> list[DrawnQuestion]:
    """An attempt's stored draw, in the order it was shown (`questions` by id, prefetched)."""
    drawn = []
    for question_id, option_ids in stored:
        question = questions[question_id]
        options = {o.pk: o for o in question.options.all()}
        drawn.append(DrawnQuestion(question, [options[pk] for pk in option_ids]))
    return drawn

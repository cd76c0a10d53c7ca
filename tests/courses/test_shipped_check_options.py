"""The shipped knowledge checks cannot be passed by picking the longest option.

When the correct option is the longest in most of a check's questions, "pick the longest"
passes it without reading the lesson. The rule: in each check, the correct option is the
strictly longest in at most half of the questions with one correct answer.
"""

from __future__ import annotations

from courses.authoring.parse import CheckSpec, QuestionSpec, parse_course_folder
from tests.conftest import SHIPPED_COURSE


def correct_is_longest(question: QuestionSpec) -> bool:
    lengths = [(len(" ".join(o.text_markdown.split())), o.correct) for o in question.options]
    longest = max(length for length, _ in lengths)
    winners = [correct for length, correct in lengths if length == longest]
    return winners == [True]  # a tie for longest tells the learner nothing


def tells(check: CheckSpec) -> tuple[list[str], int]:
    single = [q for q in check.questions if sum(o.correct for o in q.options) == 1]
    return [q.key for q in single if correct_is_longest(q)], len(single)


def test_no_shipped_check_gives_its_answers_away_by_length() -> None:
    checks = {m.slug: m.check for m in parse_course_folder(SHIPPED_COURSE).modules if m.check}
    assert len(checks) >= 12
    offenders = {}
    for slug, check in checks.items():
        longest, single = tells(check)
        if 2 * len(longest) > single:
            offenders[slug] = f"{len(longest)} of {single}: {', '.join(longest)}"
    assert offenders == {}, f"correct option is the longest in most questions: {offenders}"


def test_the_rule_catches_a_check_whose_answers_are_the_longest() -> None:
    course = parse_course_folder(SHIPPED_COURSE)
    check = next(m.check for m in course.modules if m.check)
    assert check is not None
    for question in check.questions:
        for option in question.options:
            if option.correct:
                option.text_markdown += " and then some words to make it the longest by far"
    longest, single = tells(check)
    assert single and len(longest) == single

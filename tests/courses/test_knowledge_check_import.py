"""Knowledge checks authored in front matter: validation with file:line, idempotent re-import."""

from __future__ import annotations

from pathlib import Path

import pytest

from courses.authoring.parse import parse_course_folder
from courses.authoring.source import CourseFolderError
from courses.models import CheckAnswer, CheckAttempt, CheckOption, CheckQuestion, Module
from courses.services import check_attempt_record
from labs.services.authoring import course_folder_import
from tests.factories import UserFactory

COURSE_YAML = "slug: quiz\ntitle: Quiz course\nstages:\n  - slug: one\n    title: One\n"

CHECK = """\
check:
  pass_mark: 50
  questions:
    - id: warmup
      prompt: Why warm the learning rate up over the first steps?
      options:
        - text: The new head's gradients are large and noisy at first.
          correct: true
          explanation: A random head sends big gradients into the pretrained layers.
        - text: It makes every epoch faster.
          explanation: Warm-up changes step sizes, not the time a step takes.
    - id: pick-two
      prompt: "Which of these are *hyperparameters*? $\\\\eta$ is the learning rate."
      options:
        - text: The learning rate $\\\\eta$
          correct: true
          explanation: Chosen before training.
        - text: The batch size
          correct: true
          explanation: Also chosen before training.
        - text: The weights of the classifier head
          explanation: Those are learned.
"""


def module_text(check: str = CHECK, *, kind: str = "theory") -> str:
    return f"---\nslug: lesson\ntitle: Lesson\nkind: {kind}\nminutes: 5\n{check}---\nBody $x$.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "quiz"
    (root / "one").mkdir(parents=True)
    (root / "course.yaml").write_text(COURSE_YAML)
    (root / "one" / "01-lesson.md").write_text(module_text())
    return root


def write(folder: Path, text: str) -> Path:
    path = folder / "one" / "01-lesson.md"
    path.write_text(text)
    return path


def answer_all_right(learner, module: Module):
    answers = {
        q.pk: [o.pk for o in q.options.all() if o.is_correct]
        for q in module.questions.filter(retired_at__isnull=True)
    }
    return check_attempt_record(learner=learner, module=module, answers=answers)


def test_a_check_in_front_matter_imports_with_rendered_prompts_and_options(db, folder):
    course_folder_import(path=folder)
    module = Module.objects.get(slug="lesson")
    assert module.check_pass_mark == 50
    warmup, pick_two = module.questions.order_by("position")
    assert warmup.key == "warmup" and warmup.options.count() == 2
    assert "<em>hyperparameters</em>" in pick_two.prompt_html and "<math" in pick_two.prompt_html
    first = pick_two.options.order_by("position").first()
    assert first.text_html.startswith("The learning rate <math")  # one line: no <p> wrapper
    assert first.explanation_html == "<p>Chosen before training.</p>"
    assert [o.is_correct for o in pick_two.options.order_by("position")] == [True, True, False]


def test_reimporting_an_unchanged_check_changes_nothing_and_keeps_answers(db, folder):
    course_folder_import(path=folder)
    module = Module.objects.get(slug="lesson")
    answer_all_right(UserFactory(), module)
    ids = set(CheckQuestion.objects.values_list("pk", flat=True))
    report = course_folder_import(path=folder)
    assert not report.changed
    assert set(CheckQuestion.objects.values_list("pk", flat=True)) == ids
    assert CheckAnswer.objects.count() == 2


def test_fixing_an_explanation_updates_in_place_and_keeps_answers(db, folder):
    course_folder_import(path=folder)
    answer_all_right(UserFactory(), Module.objects.get(slug="lesson"))
    write(folder, module_text(CHECK.replace("Those are learned.", "Training learns those.")))
    report = course_folder_import(path=folder)
    assert "check lesson: 1 question(s) edited" in report.updated
    assert CheckQuestion.objects.filter(retired_at__isnull=False).count() == 0
    assert CheckOption.objects.filter(explanation_markdown="Training learns those.\n").exists()
    assert CheckAnswer.objects.count() == 2


def test_changing_an_answered_question_retires_it_and_keeps_the_old_answers(db, folder):
    course_folder_import(path=folder)
    module = Module.objects.get(slug="lesson")
    answer_all_right(UserFactory(), module)
    old = module.questions.get(key="warmup")
    write(folder, module_text(CHECK.replace("It makes every epoch faster.", "It saves memory.")))
    report = course_folder_import(path=folder)
    assert "check lesson: 1 question(s) replaced" in report.updated
    old.refresh_from_db()
    assert old.retired_at is not None
    assert old.answers.count() == 1  # the evidence still points at what was answered
    live = module.questions.get(key="warmup", retired_at__isnull=True)
    assert live.pk != old.pk and "It saves memory.\n" in [
        o.text_markdown for o in live.options.all()
    ]


def test_changing_an_unanswered_question_edits_it_in_place(db, folder):
    course_folder_import(path=folder)
    old = CheckQuestion.objects.get(key="warmup")
    write(folder, module_text(CHECK.replace("It makes every epoch faster.", "It saves memory.")))
    course_folder_import(path=folder)
    assert not CheckQuestion.objects.filter(pk=old.pk).exists()
    assert CheckQuestion.objects.filter(key="warmup").count() == 1


def test_removing_the_check_retires_answered_questions_and_the_module_can_be_marked_again(
    db, folder
):
    course_folder_import(path=folder)
    answer_all_right(UserFactory(), Module.objects.get(slug="lesson"))
    write(folder, module_text(""))
    report = course_folder_import(path=folder)
    assert "check lesson: 2 question(s) removed" in report.updated
    assert CheckQuestion.objects.filter(retired_at__isnull=True).count() == 0
    assert CheckAttempt.objects.count() == 1 and CheckAnswer.objects.count() == 2


def test_questions_without_ids_are_numbered_by_position(db, folder):
    write(folder, module_text(CHECK.replace("    - id: warmup\n      prompt", "    - prompt")))
    course_folder_import(path=folder)
    assert set(CheckQuestion.objects.values_list("key", flat=True)) == {"q1", "pick-two"}


BAD_CHECKS = [
    # (replace this, with this, message, line in the file)
    ("  pass_mark: 50\n", "  pass_mark: 150\n", "'check.pass_mark' must be a whole percentage", 7),
    (
        "  pass_mark: 50\n",
        "  pass_mark: 50\n  shuffle: true\n",
        "unknown key(s) in 'check': shuffle",
        8,
    ),
    ("      prompt: Why", "      promt: Why", "unknown key(s) in question 1: promt", 10),
    (
        "          correct: true\n          explanation: A random",
        "          correct: yes please\n          explanation: A random",
        "question 1, option a: 'correct' must be true or false",
        13,
    ),
    (
        "          explanation: Warm-up changes step sizes, not the time a step takes.\n",
        "",
        "question 1, option b has no 'explanation'",
        15,
    ),
    ("    - id: pick-two", "    - id: warmup", "question 2: duplicate question id 'warmup'", 17),
    (
        "          correct: true\n          explanation: A random",
        "          explanation: A random",
        "question 1 has no correct option",
        11,
    ),
    (
        "$\\\\eta$ is the",
        "$\\\\frac{a}{b$ is the",
        "question 2 prompt: Unbalanced braces in math",
        18,
    ),
    (
        "        - text: It makes every epoch faster.\n",
        "        - text: 42\n",
        "question 1, option b text must be non-empty text",
        15,
    ),
]


@pytest.mark.parametrize(("old", "new", "message", "line"), BAD_CHECKS)
def test_a_malformed_check_fails_naming_file_line_and_problem(db, folder, old, new, message, line):
    assert old in CHECK
    path = write(folder, module_text(CHECK.replace(old, new, 1)))
    with pytest.raises(CourseFolderError) as info:
        parse_course_folder(folder)
    assert message in str(info.value)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)


def test_a_check_on_a_lab_module_is_refused(db, folder):
    write(folder, module_text(kind="lab"))
    with pytest.raises(CourseFolderError, match="only allowed on theory and case_study modules"):
        parse_course_folder(folder)


def test_a_failed_reimport_changes_no_question(db, folder):
    course_folder_import(path=folder)
    write(folder, module_text(CHECK.replace("pass_mark: 50", "pass_mark: 0")))
    with pytest.raises(CourseFolderError):
        course_folder_import(path=folder)
    assert Module.objects.get(slug="lesson").check_pass_mark == 50
    assert CheckQuestion.objects.count() == 2


def test_retry_rules_import_from_front_matter_and_default_to_none(db, folder):
    course_folder_import(path=folder)
    module = Module.objects.get(slug="lesson")
    assert (module.check_max_attempts, module.check_cooldown_minutes) == (None, 0)
    write(folder, module_text(CHECK.replace("  pass_mark: 50\n", RULES, 1)))
    course_folder_import(path=folder)
    module.refresh_from_db()
    assert (module.check_max_attempts, module.check_cooldown_minutes) == (3, 60)


RULES = "  pass_mark: 50\n  max_attempts: 3\n  cooldown_minutes: 60\n"


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("  max_attempts: 0\n", "'check.max_attempts' must be a positive whole number"),
        ("  cooldown_minutes: -5\n", "'check.cooldown_minutes' must be a whole number of minutes"),
        (
            "  cooldown_minutes: soon\n",
            "'check.cooldown_minutes' must be a whole number of minutes",
        ),
    ],
)
def test_bad_retry_rules_are_refused_naming_the_key(db, folder, new, message):
    write(folder, module_text(CHECK.replace("  pass_mark: 50\n", "  pass_mark: 50\n" + new, 1)))
    with pytest.raises(CourseFolderError, match=message):
        parse_course_folder(folder)


def test_a_pool_size_imports_and_one_larger_than_the_pool_is_refused(db, folder):
    write(folder, module_text(CHECK.replace("  pass_mark: 50\n", "  pass_mark: 50\n  draw: 1\n")))
    course_folder_import(path=folder)
    assert Module.objects.get(slug="lesson").check_draw_count == 1
    path = write(
        folder, module_text(CHECK.replace("  pass_mark: 50\n", "  pass_mark: 50\n  draw: 3\n"))
    )
    with pytest.raises(CourseFolderError) as info:
        parse_course_folder(folder)
    assert f"{path}:8:" in str(info.value)
    assert "'check.draw' is 3, but the check has only 2 question(s)" in str(info.value)


NUMERIC = """\
    - id: entropy
      prompt: Loss of a collapsed run, in nats?
      answer:
        value: 0.89
        tolerance: 0.01
      explanation: The label entropy.
"""


def test_a_numeric_question_imports_with_its_value_tolerance_and_explanation(db, folder):
    write(folder, module_text(CHECK + NUMERIC))
    course_folder_import(path=folder)
    question = Module.objects.get(slug="lesson").questions.get(key="entropy")
    assert (question.numeric_value, question.numeric_tolerance) == (0.89, 0.01)
    assert (
        question.explanation_html == "<p>The label entropy.</p>" and not question.options.exists()
    )
    report = course_folder_import(path=folder)
    assert report.updated == []  # unchanged: the same fingerprint


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("        tolerance: 0.01\n", "        tolerance: -1\n", "'tolerance' must be 0 or more"),
        (
            "        value: 0.89\n",
            "        value: lots\n",
            "question 3: 'answer.value': must be a number",
        ),
        ("      explanation: The label entropy.\n", "", "needs an 'explanation'"),
        (
            "      explanation: The label entropy.\n",
            "      explanation: x\n      options: [{text: a, explanation: b}, {text: c, explanation: d}]\n",
            "either 'options' or a numeric 'answer', not both",
        ),
    ],
)
def test_a_malformed_numeric_question_is_refused(db, folder, old, new, message):
    write(folder, module_text(CHECK + NUMERIC.replace(old, new)))
    with pytest.raises(CourseFolderError, match=message):
        parse_course_folder(folder)

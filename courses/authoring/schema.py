"""The schema of a course folder's own part: course.yaml, its stages, module front matter.

Pydantic models with `extra="forbid"`: a misspelt key is an error naming its line,
never a value silently ignored. Rules that span items (duplicate slugs, a question
with no correct option) and Markdown rendering are checked by `parse`, which knows
the files; the shapes and the defaults are here, once.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.utils.text import slugify
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MODULE_KINDS = ("theory", "lab", "case_study")
# A lab completes through its graded run, so it carries no knowledge check.
CHECK_KINDS = ("theory", "case_study")
MAX_QUESTIONS = 20
MAX_OPTIONS = 8
DEFAULT_MINUTES = 15
DEFAULT_CHECK_PASS_MARK = 100
# The column lengths of the models these values are stored in (courses.models, labs.models;
# a test holds them equal). PostgreSQL refuses a longer value with a 500, SQLite stores it.
MAX_SLUG = 80
MAX_TITLE = 200
MAX_MODULE_SUMMARY = 300


def invalid(problem: str) -> PydanticCustomError:
    """A problem phrased to follow the field's name: "'minutes' must be a positive …"."""
    return PydanticCustomError("problem", problem)


def refuse(sentence: str) -> PydanticCustomError:
    """A whole sentence about the value, shown after the field's name and a colon."""
    # Braces would be read as pydantic's message placeholders.
    return PydanticCustomError("refused", sentence.replace("{", "{{").replace("}", "}}"))


class Section(BaseModel):
    """One mapping of a course folder: unknown keys are refused, never ignored."""

    # Titles such as `2024` are text to an author, as they were to YAML's reader.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def _slug(value: str) -> str:
    if len(value) > MAX_SLUG:
        raise refuse(f"a slug is at most {MAX_SLUG} characters (this one has {len(value)})")
    if not value or slugify(value) != value:
        raise refuse(f"'{value}' is not a valid slug (lowercase letters, digits, '-')")
    return value


def at_most(limit: int) -> AfterValidator:
    """A text no longer than its database column (`limit` characters)."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise refuse(f"at most {limit} characters (this one has {len(value)})")
        return value

    return AfterValidator(check)


def _text(value: Any) -> Any:
    # Before pydantic's own check, which would turn `42` into "42" (see Section).
    if not isinstance(value, str) or not value.strip():
        raise invalid("must be non-empty text")
    return value


def _whole(value: Any, *, low: int, high: int | None, problem: str) -> int:
    # YAML's `true` is an int to Python; a float is not a count of minutes.
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(problem)
    if value < low or (high is not None and value > high):
        raise invalid(problem)
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid("must be true or false")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Summary = Annotated[str, AfterValidator(str.strip)]
Title = Annotated[str, at_most(MAX_TITLE)]


def whole_number(*, low: int = 0, high: int | None = None, problem: str) -> BeforeValidator:
    """A whole number in a range, refused with `problem` ("must be a positive whole number")."""
    return BeforeValidator(lambda value: _whole(value, low=low, high=high, problem=problem))


Minutes = Annotated[int, whole_number(low=1, problem="must be a positive whole number")]
Percent = Annotated[
    int, whole_number(low=1, high=100, problem="must be a whole percentage from 1 to 100")
]


class StageEntry(Section):
    slug: Slug
    title: Title
    summary: Summary = ""


class CourseMeta(Section):
    """course.yaml."""

    slug: Slug
    title: Title
    summary: Summary = ""
    published: Flag = True
    stages: Annotated[list[StageEntry], Field(min_length=1)]


class OptionEntry(Section):
    text: Text
    correct: Flag = False
    explanation: Text


def _number(value: Any) -> float:
    # YAML reads 1e-3 as a string and `true` as a bool: take real numbers only.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise refuse("must be a number")
    try:
        number = float(value)
    except ValueError:
        raise refuse("must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise refuse("must be a finite number")
    return number


Number = Annotated[float, BeforeValidator(_number)]


class NumericAnswer(Section):
    """A numeric question's answer: right when within `tolerance` of `value`."""

    value: Number
    tolerance: Number = 0.0

    @model_validator(mode="after")
    def _tolerance_not_negative(self) -> NumericAnswer:
        if self.tolerance < 0:
            raise refuse("'tolerance' must be 0 or more")
        return self


class QuestionEntry(Section):
    # Without an id, a question is known by its position ("q1", "q2", ...).
    id: Slug | None = None
    prompt: Text
    # A question has options, or a numeric `answer` with one `explanation`.
    options: Annotated[list[OptionEntry], Field(min_length=2, max_length=MAX_OPTIONS)] | None = None
    answer: NumericAnswer | None = None
    explanation: Text | None = None

    @model_validator(mode="after")
    def _options_or_answer(self) -> QuestionEntry:
        if (self.options is None) == (self.answer is None):
            raise refuse("a question needs either 'options' or a numeric 'answer', not both")
        if self.answer is not None and self.explanation is None:
            raise refuse("a numeric question needs an 'explanation' of its answer")
        if self.options is not None and self.explanation is not None:
            raise refuse("'explanation' belongs on each option of a multiple-choice question")
        return self


class CheckSection(Section):
    """A module's knowledge check (`check:`)."""

    pass_mark: Percent = DEFAULT_CHECK_PASS_MARK
    # None: every question each attempt; otherwise a pool that draws this many.
    draw: Minutes | None = None
    # None: no cap on attempts; 0 minutes: no wait between attempts.
    max_attempts: Minutes | None = None
    cooldown_minutes: Annotated[
        int, whole_number(low=0, problem="must be a whole number of minutes, 0 or more")
    ] = 0
    questions: Annotated[list[QuestionEntry], Field(min_length=1, max_length=MAX_QUESTIONS)]


def _kind(value: str) -> str:
    if value not in MODULE_KINDS:
        raise refuse(
            f"unknown module kind '{value}' (expected one of: {', '.join(sorted(MODULE_KINDS))})"
        )
    return value


class ModuleFront(Section):
    """A module file's front matter."""

    slug: Slug
    title: Title
    kind: Annotated[str, AfterValidator(_kind)]
    required: Flag = True
    minutes: Minutes = DEFAULT_MINUTES
    summary: Annotated[Summary, at_most(MAX_MODULE_SUMMARY)] = ""
    check: CheckSection | None = None
    # A lab module's `lab:` section: its schema is labs' (labs.authoring_schema.LabSection),
    # which reads it with the lines kept by the parser.
    lab: dict[str, Any] | None = None


# --------------------------------------------------------------------------
# Translations: `NN-name.<language>.md` beside a module file and `course.<language>.yaml`
# beside course.yaml. They carry texts only; everything else (which option is correct,
# the pass mark, minutes, the lab) is the English file's, so a translation cannot make a
# check grade differently from the English.

# Keys of the English files that a translation must not carry, with why, for the message.
NON_TEXT_KEYS = frozenset(
    {
        "correct",
        "pass_mark",
        "draw",
        "max_attempts",
        "cooldown_minutes",
        "answer",
        "kind",
        "minutes",
        "required",
        "lab",
        "published",
    }
)


class OptionText(Section):
    text: Text
    explanation: Text


class QuestionText(Section):
    id: Slug | None = None
    prompt: Text
    options: list[OptionText] | None = None
    explanation: Text | None = None


class CheckText(Section):
    questions: Annotated[list[QuestionText], Field(min_length=1, max_length=MAX_QUESTIONS)]


class ModuleTranslationFront(Section):
    """A module translation's front matter."""

    slug: Slug
    language: str
    title: Title
    summary: Annotated[Summary, at_most(MAX_MODULE_SUMMARY)] = ""
    check: CheckText | None = None


class CourseTranslationMeta(Section):
    """course.<language>.yaml."""

    language: str
    title: Title
    summary: Summary = ""
    stages: Annotated[list[StageEntry], Field(min_length=1)]

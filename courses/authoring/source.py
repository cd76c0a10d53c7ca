"""YAML read from a course folder, with the file line of every key, and the one error type.

Every problem an author can make is reported as `CourseFolderError(path, message,
line=...)`. Pydantic checks the shape (`courses.authoring.schema`,
`labs.authoring_schema`); this module turns its errors into sentences an author
reads, pointing at the line of the offending key.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

# A place in a YAML document: ("check", "questions", 0, "prompt").
Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

# Lists whose items an author thinks of by number (or letter): "question 2, option b".
ITEM_NAMES = {"stages": "stage", "questions": "question", "options": "option"}
# Fields that read as part of their item's name: "question 2 prompt", not "question 2: 'prompt'".
PROSE_FIELDS = {"prompt", "text", "explanation"}


# The YAML tags a course file may use, explicitly or implicitly: plain data only. A tag such
# as !!binary, !!timestamp or !!set makes a value the models cannot store (a 500 later).
PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")
)


class CourseFolderError(ValueError):
    """A problem in a course folder, always naming the file and, where known, the line."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        location = f"{path}:{line}" if line else str(path)
        super().__init__(f"{location}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


def read_text(path: Path) -> str:
    """A course file as text: UTF-8, or an error naming the line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CourseFolderError(
            path,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            line=line,
        ) from None


def refuse_nul(path: Path, text: str, *, line_offset: int = 0) -> None:
    """PostgreSQL cannot store a NUL character in text: refused at its line, not a 500."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1 + line_offset
        raise CourseFolderError(path, "a NUL character (\\x00) is not allowed", line=line)


class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: `&a` ... `*a` lets a few lines of YAML expand
    into billions of nodes (a "billion laughs" bomb), and no course file needs one."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in course files", mark
            )
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class YamlSource:
    """Data loaded from YAML in `path`, with the file line of each key path below `loc`."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict, compare=False, repr=False)
    loc: Loc = ()

    @classmethod
    def load(cls, path: Path, *, text: str | None = None, line_offset: int = 0) -> YamlSource:
        """Parse a YAML mapping; `line_offset` is how many file lines come before `text`."""
        text = read_text(path) if text is None else text
        refuse_nul(path, text, line_offset=line_offset)
        try:
            root = yaml.compose(text, Loader=_PlainLoader)
            data = yaml.load(text, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 + line_offset if mark is not None else None
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise CourseFolderError(path, f"invalid YAML: {problem}", line=line) from None
        if not isinstance(data, dict):
            raise CourseFolderError(
                path, "expected a YAML mapping of keys to values", line=1 + line_offset
            )
        lines: dict[Loc, int] = {}

        def walk(node: yaml.Node, where: Loc) -> None:
            lines.setdefault(where, node.start_mark.line + 1 + line_offset)
            if node.tag not in PLAIN_TAGS:
                raise CourseFolderError(
                    path,
                    f"the YAML tag {node.tag} is not allowed (plain text, numbers, true/false, "
                    "lists and mappings only)",
                    line=node.start_mark.line + 1 + line_offset,
                )
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.tag not in PLAIN_TAGS:
                        walk(key_node, where)  # refused there, at the key's line
                    child = (*where, key_node.value)
                    lines[child] = key_node.start_mark.line + 1 + line_offset
                    walk(value_node, child)
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    walk(item, (*where, index))

        if root is not None:
            walk(root, ())
        return cls(path=path, data=data, lines=lines)

    def child(self, key: str) -> YamlSource:
        """The part under `key` (a section such as `lab:`), keeping its place for errors."""
        value = self.data.get(key) if isinstance(self.data, dict) else None
        return YamlSource(path=self.path, data=value, lines=self.lines, loc=(*self.loc, key))

    def line_of(self, where: Loc) -> int | None:
        """The line of `where` below this part, or of the nearest enclosing key that has one."""
        full = (*self.loc, *where)
        while full and full not in self.lines:
            full = full[:-1]
        return self.lines.get(full)

    def error(self, where: Loc, message: str) -> CourseFolderError:
        return CourseFolderError(self.path, message, line=self.line_of(where))

    def validate(self, model: type[ModelT]) -> ModelT:
        """The data as `model`, or the first problem as a CourseFolderError at its line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            where, message = explain(exc, model=model, prefix=self.loc)
            raise self.error(where[len(self.loc) :], message) from None


def explain(exc: ValidationError, *, model: type[BaseModel], prefix: Loc = ()) -> tuple[Loc, str]:
    """The place and an author's sentence for the first of pydantic's errors.

    An unknown key comes first: it usually explains a "missing" one (a typo)."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    kind, loc = first["type"], tuple(first["loc"])
    full = (*prefix, *loc)
    if kind in ("extra_forbidden", "missing"):
        siblings = [
            str(e["loc"][-1])
            for e in errors
            if e["type"] == kind and tuple(e["loc"][:-1]) == loc[:-1]
        ]
        container = _label((*prefix, *loc[:-1]))
        if kind == "extra_forbidden":
            allowed = sorted(_model_at(model, loc[:-1]).model_fields)
            where = f" in {container}" if container else ""
            return full, (
                f"unknown key(s){where}: {', '.join(siblings)} (allowed: {', '.join(allowed)})"
            )
        if not container:
            return full, f"missing required key(s): {', '.join(sorted(siblings))}"
        return full, f"{container} has no {' or '.join(repr(s) for s in siblings)}"
    label = _label(full) or "the file"
    ctx = first.get("ctx") or {}
    if kind == "refused":  # a whole sentence about the value (see schema.refuse)
        return full, f"{label}: {first['msg']}"
    return full, f"{label} {_problem(kind, ctx, first['msg'])}"


def _problem(kind: str, ctx: dict[str, Any], msg: str) -> str:
    """Pydantic's built-in errors, said the way the rest of the messages are."""
    simple = {
        "problem": msg,  # schema.invalid: already phrased
        "model_type": "must be a mapping",
        "dict_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "list_type": "must be a list",
        "string_type": "must be text",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
    }
    if kind in simple:
        return simple[kind]
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} item(s)"
    bounds = {
        "greater_than": "above",
        "greater_than_equal": "at least",
        "less_than": "below",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        return f"must be {bounds[kind]} {next(iter(ctx.values()), '')}"
    return msg[:1].lower() + msg[1:]


def _label(loc: Loc) -> str:
    """How an author finds a place: "'lab.limits'", "question 2", "question 2, option b text"."""
    item, names = "", list[str]()
    index = 0
    while index < len(loc):
        part = loc[index]
        following = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(part, str) and part in ITEM_NAMES and isinstance(following, int):
            if part == "options":
                item = f"{item}, option {string.ascii_lowercase[following % 26]}"
            else:
                item = f"{ITEM_NAMES[part]} {following + 1}"
            names = []
            index += 2
            continue
        names.append(str(part))
        index += 1
    if not names:
        return item
    if not item:
        return f"'{'.'.join(names)}'"
    if len(names) == 1 and names[0] in PROSE_FIELDS:
        return f"{item} {names[0]}"
    return f"{item}: '{'.'.join(names)}'"


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel]:
    """The schema class that describes the mapping at `loc` (to list its allowed keys)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = model.model_fields.get(part)
        inner = _inner_model(field_info.annotation) if field_info else None
        if inner is None:
            break
        model = inner
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None

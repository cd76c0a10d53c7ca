"""A small reader of gettext .po files, enough for the catalogue's tests.

polib is not a dependency, and the format's subset that `makemessages` writes is small:
entries parted by blank lines, `#,` flags, and msgctxt / msgid / msgid_plural /
msgstr / msgstr[n] fields whose quoted strings continue on the following lines.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = ""
    msgctxt: str | None = None
    msgstr: str = ""
    msgstr_plural: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def translations(self) -> list[str]:
        return list(self.msgstr_plural.values()) if self.msgid_plural else [self.msgstr]


def _unquote(text: str) -> str:
    # A .po string is a C string literal; Python's reading of it agrees for what
    # makemessages writes (\n, \t, \", \\).
    return str(ast.literal_eval(text))


def parse(path: Path) -> list[Entry]:
    """Every entry of the file, the header (msgid "") included, in order."""
    entries: list[Entry] = []
    entry = Entry()
    current: str | None = None
    seen_field = False

    def finish() -> None:
        nonlocal entry, current, seen_field
        if seen_field:
            entries.append(entry)
        entry, current, seen_field = Entry(), None, False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if current is None:
                raise ValueError(f"{path}: a continued string with nothing to continue: {raw}")
            _append(entry, current, _unquote(line))
            continue
        name, _space, value = line.partition(" ")
        if seen_field and name in {"msgid", "msgctxt"} and current not in {None, "msgctxt"}:
            finish()  # a new entry without a blank line between
        current, seen_field = name, True
        _set(entry, name, _unquote(value))
    finish()
    return entries


def _set(entry: Entry, name: str, value: str) -> None:
    if name == "msgid":
        entry.msgid = value
    elif name == "msgid_plural":
        entry.msgid_plural = value
    elif name == "msgctxt":
        entry.msgctxt = value
    elif name == "msgstr":
        entry.msgstr = value
    elif name.startswith("msgstr["):
        entry.msgstr_plural[int(name[7:-1])] = value
    else:
        raise ValueError(f"unknown .po field {name!r}")


def _append(entry: Entry, name: str, value: str) -> None:
    if name.startswith("msgstr["):
        index = int(name[7:-1])
        entry.msgstr_plural[index] += value
    else:
        _set(entry, name, getattr(entry, name if name != "msgctxt" else "msgctxt") + value)

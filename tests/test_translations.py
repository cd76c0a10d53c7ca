"""The Simplified Chinese catalogue: complete, current, compiled, and faithful to its
placeholders. Rebuilding it is `make messages` (docs/operations.md)."""

from __future__ import annotations

import gettext
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.pofile import Entry, parse

LOCALE = Path(settings.BASE_DIR) / "locale"
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))
# What `make messages` leaves out of the scan: the virtualenv (a real folder on a fresh
# clone) and what the app writes at run time.
IGNORED = [".venv", "var", "staticfiles", "node_modules"]
# The files makemessages reads (-d django): Python and templates.
SCANNED = ("*.py", "*.html", "*.txt")

# %(name)s-style and bare %s/%d conversions, the literal %%, and str.format's {name}.
PLACEHOLDER = re.compile(
    r"%\([^)]+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%[-#0 +]*\d*(?:\.\d+)?[sdifr%]|\{\w*\}"
)


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def entries(path: Path) -> list[Entry]:
    return [e for e in parse(path) if e.msgid and not e.obsolete]


def test_there_is_a_simplified_chinese_catalogue():
    assert LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po" in CATALOGUES


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-3])
def test_every_message_is_translated_and_none_is_fuzzy(path):
    untranslated = [e.msgid for e in entries(path) if not all(t.strip() for t in e.translations)]
    fuzzy = [e.msgid for e in entries(path) if "fuzzy" in e.flags]
    assert not untranslated, f"{len(untranslated)} untranslated in {path}: {untranslated[:10]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {path} (check and unflag them): {fuzzy[:10]}"
    header = next(e for e in parse(path) if not e.msgid)
    assert "fuzzy" not in header.flags, "the header is still marked fuzzy"


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-3])
def test_every_translation_keeps_the_placeholders_of_its_message(path):
    wrong = []
    for entry in entries(path):
        expected = placeholders(entry.msgid)
        # A language with one plural form translates the plural message in msgstr[0].
        allowed = [expected, placeholders(entry.msgid_plural)] if entry.msgid_plural else [expected]
        for translation in entry.translations:
            if placeholders(translation) not in allowed:
                wrong.append((entry.msgid, translation))
    assert not wrong, "placeholders differ:\n" + "\n".join(f"{m!r}\n  → {t!r}" for m, t in wrong)


def test_the_placeholder_check_sees_a_missing_or_renamed_placeholder():
    assert placeholders("%(count)d of %(total)s · 50%%") == ["%%", "%(count)d", "%(total)s"]
    assert placeholders("{name} has %s") == ["%s", "{name}"]
    assert placeholders("共 %(total)s") != placeholders("%(count)d of %(total)s")


def _source_copy(target: Path) -> None:
    """The project's Python and templates without its locale/: makemessages writes to a
    locale/ folder it finds under the scanned tree, and must not touch the real one."""
    root = Path(settings.BASE_DIR)
    for path in root.iterdir():
        if path.name in {"locale", *IGNORED} or path.name.startswith("."):
            continue
        if path.is_dir():
            shutil.copytree(
                path,
                target / path.name,
                ignore=lambda folder, names: [
                    n
                    for n in names
                    if not (Path(folder, n).is_dir() or any(Path(n).match(g) for g in SCANNED))
                ],
            )
        elif any(path.match(g) for g in SCANNED):
            shutil.copy(path, target / path.name)


def test_every_message_in_the_code_and_templates_is_in_the_catalogue(
    tmp_path, settings, monkeypatch
):
    """makemessages over a copy of the project into a scratch folder: its messages are
    exactly the catalogue's, so none is shown untranslated and none is kept unused."""
    if shutil.which("xgettext") is None:
        pytest.fail("xgettext is missing: run `make system-deps` (Debian package 'gettext').")
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    _source_copy(source)
    monkeypatch.chdir(source)
    settings.LOCALE_PATHS = [out]
    call_command(
        "makemessages",
        locale=["zh_Hans"],
        ignore_patterns=IGNORED,
        no_location=True,
        no_obsolete=True,
        verbosity=0,
    )
    scanned = {e.key for e in entries(out / "zh_Hans" / "LC_MESSAGES" / "django.po")}
    catalogued = {e.key for e in entries(LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po")}
    missing, unused = scanned - catalogued, catalogued - scanned
    assert not missing, f"marked for translation but not in the catalogue: {sorted(missing)[:10]}"
    assert not unused, f"in the catalogue but no longer used: {sorted(unused)[:10]}"


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-3])
def test_the_compiled_catalogue_is_the_current_one(path):
    """The .mo beside each .po is what the app reads (committed: no gettext needed to run);
    a .po edited without `compilemessages` would change nothing on the pages."""
    compiled = path.with_suffix(".mo")
    assert compiled.exists(), f"{compiled} is missing: run `make messages`"
    with compiled.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    stale = []
    for entry in entries(path):
        if entry.msgid_plural:
            got = catalogue.ngettext(entry.msgid, entry.msgid_plural, 1)
            want = entry.msgstr_plural[0]
        elif entry.msgctxt is not None:
            got, want = catalogue.pgettext(entry.msgctxt, entry.msgid), entry.msgstr
        else:
            got, want = catalogue.gettext(entry.msgid), entry.msgstr
        if got != want:
            stale.append(entry.msgid)
    assert not stale, f"{compiled} is older than its .po (run `make messages`): {stale[:5]}"

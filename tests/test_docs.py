"""The documentation stays a short front door whose links lead somewhere real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import labs.training
from labs.training.contract import DEFAULT_HYPERPARAMETERS, HOOKS

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 150
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "bench" / "README.md",
    ROOT / "courses" / "content" / "fine-tuning-at-work" / "CALIBRATION.md",
]
# [text](target): the target up to whitespace or the closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_the_readme_is_a_front_door_of_at_most_150_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_engine_docstring_names_every_hook_and_hyperparameter_the_loader_accepts():
    # docs/learner-contract.md points at this docstring instead of copying it, so it
    # must stay complete as the contract grows.
    doc = labs.training.__doc__ or ""
    missing = [name for name in [*HOOKS, *DEFAULT_HYPERPARAMETERS] if name not in doc]
    assert not missing, f"labs/training/__init__.py's docstring does not mention {missing}"
    assert "labs/training/__init__.py" in (ROOT / "docs" / "learner-contract.md").read_text()

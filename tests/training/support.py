"""Shared helpers for the engine tests: the keyword task and learner-code snippets."""

from __future__ import annotations

import random
from typing import Any

from labs.training.data import Row

LABELS = ["pos", "neg", "neu"]
# Each label has its own keyword among shared filler, so a tiny model can learn it in 3 epochs.
KEYWORDS = {"pos": "alpha", "neg": "bravo", "neu": "charlie"}
FILLER = ["the", "a", "of", "market", "stock", "today", "price", "report"]
# Settings under which the tiny model reliably learns the keyword task.
FAST_HP = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-2}


def keyword_rows(n: int, seed: int = 0) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 10))]
        words.insert(rng.randint(0, len(words)), KEYWORDS[label])
        rows.append((" ".join(words), label))
    return rows


def hp_code(**hp: Any) -> str:
    """Learner code that only sets HYPERPARAMETERS (FAST_HP, overridden by `hp`)."""
    return f"HYPERPARAMETERS = { ({**FAST_HP, **hp})!r}\n"

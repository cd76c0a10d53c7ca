"""How tokenised examples become batches: grouped by length, padded to their own longest.

One implementation for both sides of the sandbox: the engine trains and
evaluates the dev split with it, and the grader predicts the held-out split
with it, so a checkpoint sees the same padding (right-padded ids, a 0/1
attention mask) in training, in the dev numbers and in grading.

Token ids come in unpadded (`tokenizer(..., padding=False)`); each batch is
padded only to its longest member, and batches are built from examples of
similar length, so little compute goes to pad tokens.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

MEGA_BATCH = 50  # batches per length-sorted group: enough to pad little, few enough to stay random


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask` (batch x longest sequence), on the CPU."""
    if not sequences:
        raise ValueError("a batch needs at least one sequence.")
    width = max(len(ids) for ids in sequences)
    input_ids = [list(ids) + [pad_id] * (width - len(ids)) for ids in sequences]
    mask = [[1] * len(ids) + [0] * (width - len(ids)) for ids in sequences]
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
    }


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches for prediction: shortest first, so each batch pads almost nothing.

    The order does not change a prediction, only how much padding is computed;
    callers put each result back at its index.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Index batches for training: similar-length examples together, in random order.

    Shuffle, cut into mega-batches of MEGA_BATCH batches, sort each by length
    (longest first) and slice it into batches, then shuffle the batch order.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * MEGA_BATCH
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        group = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    rng.shuffle(batches)
    return batches

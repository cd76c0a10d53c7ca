"""Batching and dynamic padding, shared by the engine (train and dev) and the grader."""

from __future__ import annotations

import random

import pytest
import torch

from labs.training.batching import length_grouped_batches, pad_batch, sorted_batches


def test_a_batch_is_right_padded_to_its_own_longest_sequence_with_a_matching_mask() -> None:
    batch = pad_batch([[101, 7, 102], [101, 102], [101, 5, 6, 8, 102]], pad_id=0)
    assert batch["input_ids"].tolist() == [
        [101, 7, 102, 0, 0],
        [101, 102, 0, 0, 0],
        [101, 5, 6, 8, 102],
    ]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1] * 5]
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.long


def test_padding_uses_the_tokenizers_pad_id() -> None:
    assert pad_batch([[1], [1, 2]], pad_id=9)["input_ids"].tolist() == [[1, 9], [1, 2]]


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sequence"):
        pad_batch([], pad_id=0)


def test_prediction_batches_cover_every_example_once_shortest_first() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = sorted_batches(lengths, 3)
    assert batches == [[1, 6, 3], [4, 0, 5], [2]]  # ties keep their input order
    assert sorted_batches([], 3) == []


def test_a_prediction_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        sorted_batches([1, 2], 0)


def test_length_grouped_batches_cover_every_example_once_with_similar_lengths() -> None:
    lengths = [random.Random(i).randint(3, 120) for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, random.Random(0))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(1000))
    assert all(len(batch) <= 16 for batch in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    # Length grouping leaves little padding: well under a random batching's ~1.8x.
    assert padded / sum(lengths) < 1.2
    assert batches == length_grouped_batches(lengths, 16, random.Random(0))

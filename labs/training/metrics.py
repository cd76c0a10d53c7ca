"""Classification metrics: the confusion matrix, per-class scores, accuracy and macro-F1.

One implementation for both sides of the sandbox: the engine reports dev
metrics with it while a learner trains, and the grader scores the held-out
predictions with it, so the dev macro-F1 a learner watches is computed by
the very rule that grades them. Standard library only: the grader imports
it without torch, and the engine hands it a confusion matrix counted on
the device (`tensor.tolist()`).

The rules follow scikit-learn's defaults (the tests check them against it):
rows of the matrix are the gold class, columns the predicted one; a
precision, recall or F1 whose denominator is zero is 0; macro-F1 averages
over the classes that occur in the gold or the predicted labels, so a class
the split never mentions neither helps nor hurts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Matrix = Sequence[Sequence[int]]


def confusion_matrix(gold: Sequence[int], predicted: Sequence[int], n: int) -> list[list[int]]:
    """Counts of (gold, predicted) class pairs as an `n` x `n` matrix, rows gold."""
    if len(gold) != len(predicted):
        raise ValueError(
            f"{len(gold)} gold labels but {len(predicted)} predictions: they must pair up."
        )
    matrix = [[0] * n for _ in range(n)]
    for g, p in zip(gold, predicted, strict=True):
        if not (0 <= g < n and 0 <= p < n):
            raise ValueError(f"class ids must be in 0..{n - 1}, got gold {g}, predicted {p}.")
        matrix[g][p] += 1
    return matrix


def class_scores(matrix: Matrix, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1, support (gold count) and predicted count of each class."""
    n = len(labels)
    if len(matrix) != n:
        raise ValueError(f"a confusion matrix of {len(matrix)} rows for {n} labels.")
    scores = []
    for k, label in enumerate(labels):
        tp = matrix[k][k]
        predicted_k = sum(matrix[r][k] for r in range(n))
        support = sum(matrix[k])
        precision = tp / predicted_k if predicted_k else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(
            {
                "label": label,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": support,
                "predicted": predicted_k,
            }
        )
    return scores


def accuracy(matrix: Matrix) -> float:
    """The share of examples on the diagonal; 0 for an empty matrix."""
    total = sum(sum(row) for row in matrix)
    return sum(matrix[k][k] for k in range(len(matrix))) / total if total else 0.0


def macro_f1_of(scores: Sequence[dict[str, Any]]) -> float:
    """The mean F1 over the classes present in gold or predictions (0 when none is)."""
    present = [c for c in scores if c["support"] or c["predicted"]]
    return sum(c["f1"] for c in present) / len(present) if present else 0.0


def macro_f1(matrix: Matrix) -> float:
    """Macro-F1 of a confusion matrix (rows gold); class names do not matter to it."""
    return macro_f1_of(class_scores(matrix, [str(k) for k in range(len(matrix))]))


def classification_metrics(
    gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    matrix = confusion_matrix(gold, predicted, len(labels))
    per_class = class_scores(matrix, labels)
    return {
        "accuracy": accuracy(matrix),
        "macro_f1": macro_f1_of(per_class),
        "per_class": per_class,
        "confusion_matrix": matrix,
        "labels": list(labels),
        "support": len(gold),
    }

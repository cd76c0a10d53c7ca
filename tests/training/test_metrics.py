"""The one implementation of the classification metrics, for the engine's dev split and the
grader's held-out split, checked against scikit-learn."""

from __future__ import annotations

import pytest

from labs.training.metrics import (
    accuracy,
    class_scores,
    classification_metrics,
    confusion_matrix,
    macro_f1,
)

GOLD = [0, 0, 1, 1, 2, 2, 2, 1, 0, 2, 1, 1]
PRED = [0, 1, 1, 1, 2, 0, 2, 2, 0, 2, 1, 0]


def test_the_confusion_matrix_has_gold_rows_and_predicted_columns_like_scikit_learn() -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    assert confusion_matrix(GOLD, PRED, 3) == sk_confusion_matrix(GOLD, PRED).tolist()


def test_per_class_scores_accuracy_and_macro_f1_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    matrix = confusion_matrix(GOLD, PRED, 3)
    precision, recall, f1, support = precision_recall_fscore_support(GOLD, PRED, zero_division=0)
    for row, p, r, f, s in zip(
        class_scores(matrix, ["a", "b", "c"]), precision, recall, f1, support, strict=True
    ):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (p, r, f, s)
        )
    assert accuracy(matrix) == pytest.approx(accuracy_score(GOLD, PRED))
    assert macro_f1(matrix) == pytest.approx(f1_score(GOLD, PRED, average="macro"))


def test_a_class_absent_from_gold_and_predictions_is_left_out_of_macro_f1() -> None:
    from sklearn.metrics import f1_score

    gold, pred = [0, 0, 1, 1, 2, 2, 2, 0], [0, 1, 1, 1, 0, 2, 1, 0]
    matrix = confusion_matrix(gold, pred, 4)  # class 3 never occurs: not averaged
    assert macro_f1(matrix) == pytest.approx(f1_score(gold, pred, average="macro"))


def test_a_never_predicted_class_counts_as_zero_f1() -> None:
    from sklearn.metrics import f1_score

    gold, pred = [0, 1, 2, 2], [0, 0, 0, 0]
    expected = f1_score(gold, pred, average="macro", zero_division=0)
    assert macro_f1(confusion_matrix(gold, pred, 3)) == pytest.approx(expected)


def test_the_engine_and_the_grader_get_the_same_macro_f1_from_one_rule() -> None:
    # The engine passes a matrix counted on the device, the grader passes label lists:
    # both end in class_scores, so the numbers agree to the last bit.
    metrics = classification_metrics(GOLD, PRED, ["a", "b", "c"])
    assert macro_f1(metrics["confusion_matrix"]) == metrics["macro_f1"]
    assert accuracy(metrics["confusion_matrix"]) == metrics["accuracy"]


def test_no_examples_give_zero_metrics_not_a_division_error() -> None:
    metrics = classification_metrics([], [], ["a", "b"])
    assert (metrics["accuracy"], metrics["macro_f1"], metrics["support"]) == (0.0, 0.0, 0)


@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        ([0, 1], [0], "2 gold labels but 1 predictions"),
        ([0, 3], [0, 1], "class ids must be in 0..2, got gold 3"),
        ([0, 1], [0, -1], "got gold 1, predicted -1"),
    ],
    ids=["lengths-differ", "gold-out-of-range", "negative-prediction"],
)
def test_mismatched_or_out_of_range_labels_are_refused_with_a_message(
    gold: list[int], pred: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(gold, pred, ["a", "b", "c"])

"""CSV reading/writing and the deterministic stratified samplers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from labs.training.data import (
    DataError,
    label_counts,
    parse_csv,
    read_csv,
    stratified_split,
    stratified_subset,
    write_csv,
)


def skewed_rows() -> list[tuple[str, str]]:
    """100 rows: 70 'common', 25 'middle', 4 'rare', 1 'single'."""
    labels = ["common"] * 70 + ["middle"] * 25 + ["rare"] * 4 + ["single"]
    return [(f"text {i}", label) for i, label in enumerate(labels)]


def test_written_csv_reads_back_unchanged_with_commas_quotes_and_unicode(tmp_path: Path) -> None:
    rows = [("hello, world", "a"), ('she said "hi"', "b"), ("naïve café ✓", "a")]
    write_csv(tmp_path / "d.csv", rows)
    assert read_csv(tmp_path / "d.csv") == rows


def test_byte_order_mark_and_extra_columns_are_tolerated(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes("\ufeffid,text,label\n1,hi,a\n".encode())
    assert read_csv(tmp_path / "d.csv") == [("hi", "a")]


def test_missing_label_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("text,category\nhi,a\n")
    with pytest.raises(
        DataError, match=r"^d\.csv: missing column\(s\) label; .* \(found: text, category\)"
    ):
        read_csv(tmp_path / "d.csv")


def test_bad_encoding_is_reported_with_the_offset(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(b"text,label\ncaf\xe9,a\n")
    with pytest.raises(DataError, match=r"^d\.csv: not UTF-8 text \(bad byte at offset 14\)"):
        read_csv(tmp_path / "d.csv")


def test_empty_text_is_reported_with_its_line_number(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("text,label\nhi,a\n  ,b\n")
    with pytest.raises(DataError, match=r"^d\.csv: line 3: empty text"):
        read_csv(tmp_path / "d.csv")


def test_a_file_without_rows_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"^d\.csv: no rows"):
        read_csv(tmp_path / "d.csv")


def test_blank_lines_are_skipped_but_a_row_of_empty_cells_is_not() -> None:
    assert parse_csv(b"text,label\nhi,a\n\n\nho,b\n\n", name="d.csv") == [("hi", "a"), ("ho", "b")]
    with pytest.raises(DataError, match=r"^d\.csv: line 3: empty text"):
        parse_csv(b"text,label\nhi,a\n,\n", name="d.csv")


def test_spaces_around_header_names_and_values_are_ignored() -> None:
    assert parse_csv(b" text , label \n hi there , a \n", name="d.csv") == [("hi there", "a")]


def test_the_line_named_is_the_editors_even_after_a_multi_line_text() -> None:
    data = b'text,label\n"two\nlines",a\n,b\n'
    with pytest.raises(DataError, match=r"^d\.csv: line 4: empty text"):
        parse_csv(data, name="d.csv")


def test_a_broken_csv_record_names_its_line() -> None:
    huge = b"x" * 200_000  # over the csv module's field size limit
    with pytest.raises(
        DataError, match=r"^d\.csv: line 3: a field is longer than 131,072 characters"
    ):
        parse_csv(b"text,label\nhi,a\n" + huge + b",b\n", name="d.csv")


def test_the_writer_uses_rfc_4180_line_ends_and_quotes_only_where_needed(tmp_path: Path) -> None:
    write_csv(tmp_path / "d.csv", [("plain", "a"), ("a, b", "c")])
    assert (tmp_path / "d.csv").read_bytes() == b'text,label\r\nplain,a\r\n"a, b",c\r\n'


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_csv(tmp_path / "nope.csv")


def test_split_keeps_every_label_with_two_or_more_rows_on_both_sides() -> None:
    rows = skewed_rows()
    train, dev = stratified_split(rows, 0.2, seed=1)
    assert len(dev) == 20
    assert sorted(train + dev) == sorted(rows)
    assert set(label_counts(dev)) == {"common", "middle", "rare"}
    assert set(label_counts(train)) == {"common", "middle", "rare", "single"}
    assert label_counts(dev)["common"] == 14  # 20% of 70


def test_split_is_deterministic_and_depends_on_the_seed() -> None:
    rows = skewed_rows()
    assert stratified_split(rows, 0.2, seed=1) == stratified_split(rows, 0.2, seed=1)
    assert stratified_split(rows, 0.2, seed=1) != stratified_split(rows, 0.2, seed=2)


def test_split_keeps_the_original_row_order() -> None:
    rows = skewed_rows()
    train, dev = stratified_split(rows, 0.3, seed=0)
    assert train == [row for row in rows if row in train]
    assert dev == [row for row in rows if row in dev]


def test_split_with_more_labels_than_dev_rows_keeps_the_frequent_labels() -> None:
    rows = [(f"t{i}", f"label{i % 10}") for i in range(30)]
    _, dev = stratified_split(rows, 0.1, seed=0)
    assert len(dev) == 3
    assert len(set(label_counts(dev))) == 3


def test_subset_keeps_proportions_and_every_label() -> None:
    subset = stratified_subset(skewed_rows(), 20, seed=3)
    counts = Counter(label for _, label in subset)
    assert len(subset) == 20
    assert set(counts) == {"common", "middle", "rare", "single"}
    assert counts["common"] == 13 and counts["middle"] == 5
    assert stratified_subset(skewed_rows(), 20, seed=3) == subset


def test_subset_larger_than_the_data_returns_all_rows() -> None:
    assert stratified_subset(skewed_rows(), 500, seed=0) == skewed_rows()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stratified_subset(skewed_rows(), 0, seed=0), "at least 1 row"),
        (lambda: stratified_split(skewed_rows(), 1.0, seed=0), "between 0 and 1"),
        (lambda: stratified_split(skewed_rows()[:1], 0.5, seed=0), "cannot split 1 row"),
    ],
)
def test_impossible_sampling_requests_are_refused(call, message: str) -> None:
    with pytest.raises(DataError, match=message):
        call()

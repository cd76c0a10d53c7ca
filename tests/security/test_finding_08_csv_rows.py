"""Finding 8: CSV rows silently misread, errors on the wrong line, a test-set leak accepted,
look-alike labels made separate classes without a word."""

from __future__ import annotations

import pytest

from labs.datasets import DatasetError, parse_dataset
from labs.services.authoring import course_folder_import
from labs.training.data import DataError, parse_csv
from tests.conftest import small_dataset_bytes
from tests.security.authoring_support import write_course


def test_finding_08_a_row_with_an_unquoted_comma_is_refused_with_its_line():
    with pytest.raises(DataError) as error:
        parse_csv(b"text,label\nfine,ham\nhello, world,ham\n", name="train.csv")
    assert str(error.value).startswith("train.csv: line 3: 3 fields where the header has 2")
    assert "double quotes" in str(error.value)


def test_finding_08_a_quoted_text_after_a_space_reads_as_one_field():
    rows = parse_csv(b'text, label\nhello, ham\n"a, b", spam\nx, "y"\n', name="t.csv")
    assert rows == [("hello", "ham"), ("a, b", "spam"), ("x", "y")]


def test_finding_08_a_one_megabyte_field_is_reported_on_its_own_line():
    data = b"text,label\nhi,a\nthere,b\n" + b"x" * 1_000_000 + b",b\nlast,a\n"
    with pytest.raises(DataError) as error:
        parse_csv(data, name="train.csv")
    assert str(error.value).startswith(
        "train.csv: line 4: a field is longer than 131,072 characters"
    )


def test_finding_08_train_rows_that_are_held_out_rows_are_refused_with_the_count():
    train, heldout = small_dataset_bytes()
    leaked = heldout.split(b"\n")[1:4]  # three held-out rows copied into training
    with pytest.raises(DatasetError) as error:
        parse_dataset(train=train + b"\n" + b"\n".join(leaked).upper(), heldout=heldout)
    assert "test.csv: 3 held-out row(s) also appear in train.csv" in str(error.value)


def test_finding_08_look_alike_labels_are_warned(tmp_path, db):
    train, heldout = small_dataset_bytes()
    train += b"\nspam offer,spam\nspam again,Spam\nspam thrice,spam\xe2\x80\x8b"
    report = course_folder_import(path=write_course(tmp_path / "a", train=train, heldout=heldout))
    assert report.warnings == [
        f"{tmp_path}/a/datasets/shared-data/train.csv: labels 'Spam', 'spam', 'spam\\u200b' "
        "look alike but are separate classes; spell each class one way"
    ]
    assert any("labels 'Spam', 'spam'" in line for line in report.lines())

from __future__ import annotations

import pytest
from django.urls import reverse

from labs.datasets import DatasetError, parse_csv, parse_dataset
from labs.models import Example

GOOD_TRAIN = b"text,label\nnice day,pos\nawful day,neg\n"
GOOD_TEST = b"text,label\nfine day,pos\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"sentence,label\nhi,a\n", "missing column(s) text"),
        (b"text\nhi\n", "missing column(s) label"),
        (b"text,label\n\xff\xfe broken,a\n", "not UTF-8"),
        (b"text,label\nhello,a\n   ,b\n", "line 3: empty text"),
        (b"text,label\nhello,\n", "line 2: empty label"),
        (b"text,label\n", "no rows"),
    ],
    ids=["missing-text", "missing-label", "bad-encoding", "empty-text", "empty-label", "no-rows"],
)
def test_bad_csv_gets_a_clear_message_naming_file_and_line(data, message):
    with pytest.raises(DatasetError) as info:
        parse_csv(data, name="train.csv")
    assert message in str(info.value)
    assert str(info.value).startswith("train.csv")


def test_a_dataset_with_one_label_only_is_refused():
    with pytest.raises(DatasetError, match="only one label"):
        parse_dataset(train=b"text,label\na,x\nb,x\n", heldout=b"text,label\nc,x\n")


def test_heldout_labels_unseen_in_train_are_refused():
    with pytest.raises(DatasetError, match=r"never seen in train\.csv: surprise"):
        parse_dataset(train=GOOD_TRAIN, heldout=b"text,label\nwhat,surprise\n")


def test_utf8_with_bom_and_quoted_commas_parse():
    rows = parse_csv('\ufefftext,label\n"a, quoted ""text""",x\n'.encode(), name="t.csv")
    assert rows == [('a, quoted "text"', "x")]


def test_import_stores_rows_by_split_and_reimport_is_a_no_op(dataset):
    from labs.services.datasets import dataset_import

    assert dataset.labels == ["bad", "good", "meh"]
    assert Example.objects.filter(dataset=dataset, split="train").count() == 120
    assert Example.objects.filter(dataset=dataset, split="heldout").count() == 30
    train = [(e.text, e.label) for e in dataset.examples.filter(split="train")]
    heldout = [(e.text, e.label) for e in dataset.examples.filter(split="heldout")]
    from labs.datasets import ParsedDataset

    _, outcome = dataset_import(
        slug=dataset.slug,
        title=dataset.title,
        license_name=dataset.license_name,
        source_markdown=dataset.source_markdown,
        description=dataset.description,
        parsed=ParsedDataset(train=train, heldout=heldout, labels=dataset.labels),
    )
    assert outcome == "unchanged"


def test_dataset_card_shows_distribution_sample_and_attribution_but_no_heldout_text(
    client, learner, dataset
):
    client.force_login(learner)
    page = client.get(reverse("labs:dataset", args=[dataset.slug])).content.decode()
    assert "120</strong> training examples" in page
    assert "30</strong> held-out" in page
    assert '<svg class="chart bar-chart"' in page
    assert "CC0 (made up for tests)" in page
    assert "Made up for tests." in page
    for example in Example.objects.filter(dataset=dataset, split="heldout"):
        assert example.text not in page


def test_shipped_datasets_keep_their_source_and_license(shipped_course):
    from labs.models import Dataset

    twitter = Dataset.objects.get(slug="twitter-financial-sentiment")
    assert twitter.labels == ["negative", "neutral", "positive"]
    assert "MIT" in twitter.license_name
    assert "Citation" in twitter.source_html
    assert Example.objects.filter(dataset=twitter, split="heldout").count() == 2388


def test_an_upload_and_the_engine_read_the_same_rows_and_refuse_the_same_files(tmp_path):
    from labs.training.data import DataError, read_csv

    tricky = b' text , label \n"two\nlines, quoted ""x""",a\n\n  spaced  ,b\n'
    (tmp_path / "train.csv").write_bytes(tricky)
    assert parse_csv(tricky, name="train.csv") == read_csv(tmp_path / "train.csv")

    broken = b"text,label\nhello,a\n   ,b\n"
    (tmp_path / "train.csv").write_bytes(broken)
    with pytest.raises(DataError) as engine_side:
        read_csv(tmp_path / "train.csv")
    with pytest.raises(DatasetError) as upload_side:
        parse_csv(broken, name="train.csv")
    assert str(upload_side.value) == str(engine_side.value) == "train.csv: line 3: empty text"


def test_the_shipped_datasets_export_byte_for_byte_as_they_were_shipped(shipped_course, tmp_path):
    from labs.exporting import dataset_export
    from labs.models import Dataset
    from tests.conftest import SHIPPED_COURSE

    for dataset in Dataset.objects.all():
        dataset_export(dataset, tmp_path / dataset.slug)
        shipped = SHIPPED_COURSE / "datasets" / dataset.slug
        for name in ("train.csv", "test.csv"):
            exported = (tmp_path / dataset.slug / name).read_bytes()
            assert exported == (shipped / name).read_bytes(), f"{dataset.slug}/{name}"


def test_a_dev_split_with_a_label_unseen_in_train_is_refused():
    with pytest.raises(DatasetError, match=r"^dev\.csv: label\(s\) never seen in train\.csv: odd"):
        parse_dataset(train=GOOD_TRAIN, heldout=GOOD_TEST, dev=b"text,label\nhm,odd\n")


def test_a_dev_split_that_repeats_held_out_texts_is_refused_with_the_count():
    # Dev goes into every job folder, so a held-out text there would leak the test set.
    dev = b"text,label\nfine day,pos\nok day,pos\n"
    with pytest.raises(DatasetError, match=r"dev\.csv: 1 row\(s\) repeat a text of test\.csv"):
        parse_dataset(train=GOOD_TRAIN, heldout=GOOD_TEST, dev=dev)


def test_a_dataset_with_its_own_dev_split_gives_every_lab_those_rows_as_dev(lab, learner):
    """A job's dev.csv is the dataset's dev split, and train keeps all its rows."""
    from labs.models import Submission
    from labs.services.datasets import dataset_import
    from labs.training.data import read_csv
    from runs.jobs import job_write

    dataset = lab.dataset
    train = [(e.text, e.label) for e in dataset.examples.filter(split="train")]
    heldout = [(e.text, e.label) for e in dataset.examples.filter(split="heldout")]
    dev = [(f"a dev row {i}", label) for i, label in enumerate(dataset.labels * 2)]
    from labs.datasets import ParsedDataset

    dataset_import(
        slug=dataset.slug,
        title=dataset.title,
        license_name=dataset.license_name,
        source_markdown=dataset.source_markdown,
        parsed=ParsedDataset(train=train, heldout=heldout, labels=dataset.labels, dev=dev),
    )
    assert Example.objects.filter(dataset=dataset, split="dev").count() == len(dev)
    lab.train_subset_size = 0
    lab.save()
    run = Submission.objects.create(learner=learner, lab=lab, code="")
    job_dir = job_write(run)
    assert read_csv(str(job_dir / "dev.csv")) == dev
    assert sorted(read_csv(str(job_dir / "train.csv"))) == sorted(train)


def test_the_shipped_clinc150_dev_split_holds_the_out_of_scope_validation_rows(shipped_course):
    from labs.models import Dataset

    clinc = Dataset.objects.get(slug="clinc150")
    dev = clinc.examples.filter(split="dev")
    assert dev.count() == 1600
    assert dev.filter(label="out_of_scope").count() == 100
    heldout = set(clinc.examples.filter(split="heldout").values_list("text", flat=True))
    assert not heldout & set(dev.values_list("text", flat=True))


def test_the_sample_shows_a_few_rows_of_every_class_spread_not_the_first_rows(learner, db):
    from labs.datasets import parse_dataset
    from labs.selectors import dataset_card
    from labs.services.datasets import dataset_import

    # A file sorted by label, as many are: its first 12 rows are all "alpha".
    rows = ["text,label"] + [
        f"{label} row {i:02d},{label}" for label in ("alpha", "beta", "gamma") for i in range(30)
    ]
    ds, _ = dataset_import(
        slug="sorted",
        title="Sorted",
        license_name="CC0",
        source_markdown="Made up.",
        parsed=parse_dataset(train="\n".join(rows).encode(), heldout=b"text,label\nx,alpha\n"),
    )
    sample = dataset_card(dataset=ds)["sample"]
    assert [label for _, label in sample[:3]] == ["alpha", "beta", "gamma"]  # interleaved
    assert {label: [t for t, lb in sample if lb == label] for label in ("alpha",)} == {
        "alpha": ["alpha row 03", "alpha row 11", "alpha row 18", "alpha row 26"]
    }
    assert len(sample) == 12 and sample == dataset_card(dataset=ds)["sample"]  # deterministic


def test_a_dataset_of_many_classes_samples_one_row_of_the_largest(learner, db):
    from labs.datasets import parse_dataset
    from labs.selectors import dataset_card
    from labs.services.datasets import dataset_import

    rows = ["text,label"] + [f"c{c:02d} text {i},c{c:02d}" for c in range(20) for i in range(3 + c)]
    ds, _ = dataset_import(
        slug="many",
        title="Many",
        license_name="CC0",
        source_markdown="Made up.",
        parsed=parse_dataset(train="\n".join(rows).encode(), heldout=b"text,label\nx,c00\n"),
    )
    sample = dataset_card(dataset=ds)["sample"]
    assert [label for _, label in sample] == [f"c{c:02d}" for c in range(19, 7, -1)]


def test_the_shipped_sources_say_nothing_about_an_unreachable_hub():
    from tests.conftest import SHIPPED_COURSE

    for source in (SHIPPED_COURSE / "datasets").glob("*/SOURCE.md"):
        text = source.read_text()
        assert "could not be reached" not in text and "checked from here" not in text, source

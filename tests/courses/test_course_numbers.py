"""The numbers the course text quotes are the ones `derive_numbers.py` computes.

Each test derives a figure from the datasets, the model or a formula and checks the
sentence that quotes it, so an edit to the data or the text that breaks the match fails here.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

COURSE = Path(__file__).resolve().parents[2] / "courses" / "content" / "fine-tuning-at-work"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_numbers", COURSE / "derive_numbers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


derive = _load()


def text(page: str) -> str:
    return (COURSE / page).read_text(encoding="utf-8")


def test_collapsed_loss_on_the_learning_rate_lab_is_its_label_entropy() -> None:
    rows = derive.lab_train_rows("lab-learning-rate")
    counts = derive.label_counts(rows)
    assert (len(rows), counts) == (1080, {"negative": 163, "neutral": 699, "positive": 218})
    assert f"{derive.label_entropy(rows):.2f}" == "0.89"
    page = text("foundations/06-lab-learning-rate.md")
    assert "flat at\n  about 0.89" in page
    assert "699\n  neutral, 218 positive, 163 negative" in page
    assert "0.82" not in page


def test_label_entropies_quoted_in_the_optimiser_lesson() -> None:
    page = text("foundations/04-optimisers-and-learning-rate.md")
    tweets = derive.label_entropy(derive.dataset_rows("twitter-financial-sentiment"))
    spam = derive.dataset_rows("sms-spam")
    banking = derive.label_entropy(derive.dataset_rows("banking77"))
    assert f"{tweets:.2f}" == "0.89" and "that is 0.89" in page
    assert f"{derive.label_entropy(spam):.2f}" == "0.38" and "it is 0.38" in page
    assert f"{derive.majority_share(spam):.1%}" == "87.5%" and "87.5%" in page
    assert f"{banking:.2f}" == "4.31" and "it is 4.31" in page
    assert f"{math.log(77):.2f}" == "4.34"


def test_adam_factors_match_kingma_and_ba() -> None:
    page = text("foundations/04-optimisers-and-learning-rate.md")
    assert f"{derive.adam_step_bound():.2f}" == "3.16" and "3.16\\,\\eta" in page
    assert f"{derive.adam_uncorrected_factor(1):.2f}" == "3.16"
    assert f"{derive.adam_uncorrected_factor(10):.1f}" == "6.5" and "6.5 times at step 10" in page
    assert f"{derive.adam_uncorrected_factor(100):.1f}" == "3.2" and "3.2 at step 100" in page
    assert f"{derive.adam_uncorrected_factor(1000):.1f}" == "1.3" and "1.3 at step 1,000" in page
    assert derive.momentum_gain(0.9) == pytest.approx(10) and "= 10\\eta" in page
    assert "far too small" not in page


def test_typical_weight_sizes_and_the_drift_they_imply() -> None:
    sizes = derive.typical_weight_sizes()
    page = text("foundations/04-optimisers-and-learning-rate.md")
    assert f"{sizes['embedding']:.3f}" == "0.043" and "0.043 in the embedding" in page
    assert f"{sizes['attention']:.3f}" == "0.054" and "0.054 in the attention" in page
    drift = 1000 * 2e-5
    for size in sizes.values():  # "a third to a half of a typical weight"
        assert size / 3 < drift < size / 2
    assert "a third to a half of a typical weight" in page


def test_warm_up_worked_example() -> None:
    page = text("foundations/04-optimisers-and-learning-rate.md")
    per_epoch, total, warmup = derive.schedule_steps(9992, 32, 3, 0.1)
    assert (per_epoch, total, warmup) == (313, 939, 94)
    quoted = ["0", "2.5e-5", "5.0e-5", "3.8e-5", "2.5e-5", "0"]
    for t, shown in zip((0, 47, 94, 300, 516, 939), quoted, strict=True):
        value = derive.linear_schedule(t, total, warmup, 5e-5)
        assert (f"{value:.1e}".replace("e-05", "e-5") if value else "0") == shown
    assert "| Learning rate | 0 | 2.5e-5 | 5.0e-5 | 3.8e-5 | 2.5e-5 | 0 |" in page
    for batch, steps in ((16, "1,875"), (32, "939"), (128, "237")):
        assert f"{derive.schedule_steps(9992, batch, 3, 0.1)[1]:,}" == steps
        assert f"batch {batch} gives {'only ' if batch == 128 else ''}{steps}" in page


def test_lora_parameter_counts() -> None:
    page = text("doing-it-well/03-parameter-efficient-fine-tuning.md")
    counts = derive.lora_minilm_counts(77)
    assert derive.lora_params(384, 384, 8) == 6144 and "6,144 instead of 147,456" in page
    assert counts["lora"] == 73728 and "73{,}728" in page
    assert counts["head"] == 29645 and "29{,}645" in page
    assert counts["lesson_total"] == 103373 and page.count("103,373") == 2
    assert counts["pooler"] == 147840 and "another 147,840" in page
    total = derive.model_parameter_count() + counts["lora"]
    assert f"{counts['lesson_total'] / total:.2%}" == "0.45%" and "**0.45%**" in page
    assert f"{counts['lora'] / total:.2%}" == "0.32%" and "0.32% for the LoRA part" in page


def test_lesson_lora_module_is_the_one_the_engine_accepts() -> None:
    page = text("doing-it-well/03-parameter-efficient-fine-tuning.md")
    lab = (COURSE / "doing-it-well/labs/peft/solution.py").read_text(encoding="utf-8")
    for name in ("self.lora_a", "self.lora_b", "self.scale", "return self.base"):
        assert name in page and name in lab
    assert "usually scores a little higher" not in page
    assert "0.795" in page and "0.736" in page


def test_little_data_class_counts_and_balanced_weights() -> None:
    rows = derive.lab_train_rows("lab-little-data")
    counts = derive.label_counts(rows)
    assert counts == {"negative": 163, "neutral": 699, "positive": 218}
    assert derive.balanced_class_weights(rows) == {
        "negative": 2.21,
        "neutral": 0.52,
        "positive": 1.65,
    }
    page = text("doing-it-well/06-lab-little-data.md")
    assert "699 are neutral, 218 positive and 163 negative" in page
    assert "2.21, 0.52 and\n   1.65" in page and "1,080 tweets" in page
    assert "CLASS_WEIGHTS = [3.0, 0.5, 1.5]" in (
        COURSE / "doing-it-well/labs/little-data/solution.py"
    ).read_text(encoding="utf-8")


def test_token_length_table_and_lab_pages_agree_with_the_tokenizer() -> None:
    lesson = text("foundations/02-tokenisation.md")
    names = {
        "Twitter financial news": "twitter-financial-sentiment",
        "Banking77": "banking77",
        "SMS spam": "sms-spam",
        "CLINC150": "clinc150",
    }
    for shown, dataset in names.items():
        s = derive.length_summary(derive.dataset_rows(dataset))
        row = (
            f"| {shown} | {s['median']} | {s['p95']} | {s['p99']} | {s['max']} | "
            f"{s['over_64']} of {s['n']:,} |"
        )
        assert row in lesson
    many = derive.length_summary(derive.lab_train_rows("lab-many-classes"))
    assert (many["n"], many["median"], many["p90"], many["p99"], many["max"]) == (
        2700,
        14,
        28,
        53,
        98,
    )
    assert "half are 14 word pieces or fewer, 90% are within 28" in text(
        "doing-it-well/04-lab-many-classes.md"
    )
    cap = derive.length_summary(derive.lab_train_rows("lab-capstone"))
    assert (cap["n"], cap["median"], cap["p99"], cap["max"]) == (4077, 11, 21, 32)
    assert "median 11 word pieces, 99% within 21, the longest 32" in text(
        "at-work/06-lab-capstone.md"
    )


def test_numeric_check_answers_are_the_derived_numbers() -> None:
    from courses.authoring.parse import parse_course_folder

    course = parse_course_folder(COURSE)
    numeric = {
        q.key: q.numeric
        for m in course.modules
        if m.check
        for q in m.check.questions
        if q.numeric is not None
    }
    rows = derive.lab_train_rows("lab-learning-rate")
    collapsed = numeric["collapsed-loss-value"]
    assert collapsed is not None
    assert abs(derive.label_entropy(rows) - collapsed.value) <= collapsed.tolerance
    assert numeric["warm-up-steps"].value == derive.schedule_steps(3000, 32, 4, 0.1)[2] == 38
    assert numeric["lora-model-count"].value == derive.lora_minilm_counts(77)["lora"]

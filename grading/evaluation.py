"""Held-out evaluation of a learner's checkpoint, in the trusted worker, outside the sandbox.

No Django here: given a job folder, the lab's base model and the held-out
rows, check the checkpoint, predict, and compute metrics. Everything read
from the job folder was writable by learner code, so it is opened without
following links, bounded in size, and only `config.json` + `model.safetensors`
(+ the tokenizer, compared with the base model's) are accepted. Never pickle,
never `trust_remote_code`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The held-out metrics are the engine's dev metrics: one implementation, in labs.training,
# named here too for the grader's callers.
from labs.training.metrics import classification_metrics as classification_metrics
from sandbox import UnsafeJobFile, open_job_file

CHECKPOINT_DIR = "checkpoint"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_TOKENIZER_BYTES = 20 * 1024 * 1024
# Twice the float32 size of the base model is generous and still refuses a 2 GB file.
WEIGHTS_SLACK = 2.0
ARCHITECTURE = "BertForSequenceClassification"
SIZE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
)
EVAL_MAX_LENGTH = 256
EVAL_BATCH_SIZE = 64
PRECISIONS = ("auto", "fp32", "bf16")


class CheckpointRejected(Exception):
    """The learner's checkpoint cannot be graded; the message is one sentence for them."""


@dataclass
class Evaluation:
    predictions: list[int]
    seconds: float
    samples_per_second: float
    device: str


def _read(job_dir: str, name: str, max_bytes: int) -> bytes:
    try:
        return open_job_file(job_dir, f"{CHECKPOINT_DIR}/{name}", max_bytes=max_bytes)
    except FileNotFoundError:
        raise CheckpointRejected(f"The checkpoint has no {name}.") from None
    except UnsafeJobFile as exc:
        raise CheckpointRejected(f"The checkpoint's {name} was refused: {exc}") from None


def _base_weights_bytes(base_model: str) -> int:
    return (Path(base_model) / "model.safetensors").stat().st_size


def _base_vocab(base_model: str) -> dict[str, int]:
    lines = (Path(base_model) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(lines)}


def _learner_vocab(job_dir: str) -> dict[str, int]:
    """The WordPiece vocabulary the checkpoint's tokenizer files declare (vocab.txt or tokenizer.json)."""
    try:
        lines = _read(job_dir, "vocab.txt", MAX_TOKENIZER_BYTES).decode("utf-8").splitlines()
        return {token: i for i, token in enumerate(lines)}
    except CheckpointRejected as missing:
        try:
            data = json.loads(_read(job_dir, "tokenizer.json", MAX_TOKENIZER_BYTES))
            vocab = data["model"]["vocab"]
        except CheckpointRejected:
            raise CheckpointRejected(
                "The checkpoint has no tokenizer (vocab.txt or tokenizer.json)."
            ) from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise CheckpointRejected(
                "The checkpoint's tokenizer.json is not a WordPiece tokenizer."
            ) from missing
        if not isinstance(vocab, dict):
            raise CheckpointRejected("The checkpoint's tokenizer.json has no vocabulary.") from None
        return vocab
    except UnicodeDecodeError:
        raise CheckpointRejected("The checkpoint's vocab.txt is not UTF-8 text.") from None


def check_config(
    config: dict[str, Any], *, base_config: dict[str, Any], labels: Sequence[str]
) -> None:
    if config.get("architectures") != [ARCHITECTURE] or config.get("model_type") != "bert":
        raise CheckpointRejected(
            f"The checkpoint must be a {ARCHITECTURE}, not {config.get('architectures')}."
        )
    for key in SIZE_KEYS:
        if config.get(key) != base_config.get(key):
            raise CheckpointRejected(
                f"The checkpoint's {key} is {config.get(key)}, but the lab's base model has "
                f"{base_config.get(key)}: fine-tune the base model, do not change its shape."
            )
    id2label = config.get("id2label") or {}
    if len(id2label) != len(labels):
        raise CheckpointRejected(
            f"The checkpoint predicts {len(id2label)} labels, but the dataset has {len(labels)}."
        )
    try:
        ordered = [id2label[str(i)] for i in range(len(labels))]
    except KeyError:
        raise CheckpointRejected("The checkpoint's id2label is not numbered 0..n-1.") from None
    if ordered != list(labels):
        raise CheckpointRejected("The checkpoint's labels are not in the dataset's order.")


def load_checkpoint(job_dir: str, *, base_model: str, labels: Sequence[str]):
    """Return a model built from the base config with the learner's weights, or reject."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors
    from transformers import BertConfig, BertForSequenceClassification

    base_config = json.loads((Path(base_model) / "config.json").read_text())
    try:
        config = json.loads(_read(job_dir, "config.json", MAX_CONFIG_BYTES))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointRejected("The checkpoint's config.json is not valid JSON.") from None
    if not isinstance(config, dict):
        raise CheckpointRejected("The checkpoint's config.json is not a JSON object.")
    check_config(config, base_config=base_config, labels=labels)

    if _learner_vocab(job_dir) != _base_vocab(base_model):
        raise CheckpointRejected(
            "The checkpoint's tokenizer vocabulary differs from the base model's."
        )

    max_weights = int(_base_weights_bytes(base_model) * WEIGHTS_SLACK) + 1024 * 1024
    blob = _read(job_dir, "model.safetensors", max_weights)
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError, OSError):
        raise CheckpointRejected(
            "model.safetensors is not a safetensors file (pickles and other formats are refused)."
        ) from None

    # The architecture comes from the trusted base config; only weights come from the learner.
    trusted = BertConfig(
        **{k: v for k, v in base_config.items() if k not in {"architectures", "_name_or_path"}}
    )
    trusted.num_labels = len(labels)
    trusted.id2label = dict(enumerate(labels))
    trusted.label2id = {label: i for i, label in enumerate(labels)}
    model = BertForSequenceClassification(trusted)
    expected = model.state_dict()
    # Buffers such as position_ids may legitimately be absent from a checkpoint.
    optional = {k for k in expected if k.endswith("position_ids")}
    missing = sorted(set(expected) - set(tensors) - optional)
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise CheckpointRejected(
            f"The checkpoint is missing {len(missing)} tensor(s), e.g. {missing[0]}."
        )
    if extra:
        raise CheckpointRejected(
            f"The checkpoint has {len(extra)} unexpected tensor(s), e.g. {extra[0]}."
        )
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointRejected(
                f"Tensor {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}."
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointRejected(
                f"Tensor {name} contains NaN or infinite values: training diverged."
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=False)
    model.eval()
    return model


def inference_precision(device: str, requested: str = "auto") -> str:
    """The number format the grader computes in: bf16 where the hardware has it natively.

    On a CUDA GPU, and on CPUs with AMX or AVX-512 BF16 units, bf16 inference is several
    times faster than fp32 and changes a prediction only where two logits nearly tie
    (bench/grading.py measures both). Elsewhere bf16 would be emulated, slower than fp32.
    """
    import torch

    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "bf16"
    native = (
        getattr(torch.cpu, name, lambda: False)()
        for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    )
    return "bf16" if any(native) else "fp32"


def predict(
    model: Any,
    texts: Sequence[str],
    *,
    base_model: str,
    device: str | None = None,
    precision: str = "auto",
    on_batch: Callable[[], None] = lambda: None,
) -> Evaluation:
    """Batched, length-sorted, dynamically padded inference on the raw held-out texts.

    The model is moved to the device and cast to the precision in place (one copy in memory).
    """
    import torch
    from transformers import AutoTokenizer

    from labs.training.batching import pad_batch, sorted_batches

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = inference_precision(device, precision)
    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    # The whole model in bf16, not autocast: autocast keeps LayerNorm and softmax in fp32 and
    # converts weights on every call, which costs a third of the speed-up on CPU.
    model.to(device=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    start = time.perf_counter()
    encoded = tokenizer(list(texts), truncation=True, max_length=EVAL_MAX_LENGTH)["input_ids"]
    predictions = [0] * len(encoded)
    pad = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        # Batched and padded as the engine does its dev split (one rule, labs.training).
        for batch in sorted_batches([len(ids) for ids in encoded], EVAL_BATCH_SIZE):
            inputs = pad_batch([encoded[i] for i in batch], pad)
            logits = model(
                input_ids=inputs["input_ids"].to(device),
                attention_mask=inputs["attention_mask"].to(device),
            ).logits
            for i, label in zip(batch, logits.argmax(dim=-1).tolist(), strict=True):
                predictions[i] = label
            on_batch()
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    return Evaluation(
        predictions,
        seconds,
        len(texts) / seconds if seconds else 0.0,
        f"{name} ({precision})",
    )


def router_metrics(
    gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str], *, out_of_scope: str
) -> dict[str, Any]:
    """How an intent router does on both of its jobs, and one number for the two.

    In-scope accuracy: of the queries with a real intent, the share routed to
    that intent (sending one to out-of-scope is a miss). Out-of-scope recall: of
    the queries that fit no intent, the share recognised as out-of-scope. The
    harmonic mean is high only when both are: a router that hands every query
    off, or never does, scores 0.
    """
    if out_of_scope not in labels:
        raise ValueError(f"{out_of_scope!r} is not one of the dataset's labels")
    oos = list(labels).index(out_of_scope)
    in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != oos]
    oos_rows = [p for g, p in zip(gold, predicted, strict=True) if g == oos]
    in_scope_accuracy = sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else 0.0
    oos_recall = sum(p == oos for p in oos_rows) / len(oos_rows) if oos_rows else 0.0
    both = in_scope_accuracy + oos_recall
    return {
        "out_of_scope_label": out_of_scope,
        "in_scope_accuracy": in_scope_accuracy,
        "out_of_scope_recall": oos_recall,
        "harmonic_mean": 2 * in_scope_accuracy * oos_recall / both if both else 0.0,
        "in_scope_support": len(in_scope),
        "out_of_scope_support": len(oos_rows),
    }


def rubric_score(value: float, *, baseline: float, target: float) -> float:
    """0 at or below the baseline, 100 at or above the target, linear between."""
    if math.isnan(value) or target <= baseline:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (value - baseline) / (target - baseline)))

"""Held-out evaluation of a learner's checkpoint, in the trusted worker, outside the sandbox.

No Django here: given a job folder, the lab's base model and the held-out
rows, check the checkpoint, predict, and compute metrics. Everything read
from the job folder was writable by learner code, so it is opened without
following links, bounded in size, and only `config.json` + `model.safetensors`
(+ the tokenizer, compared with the base model's) are accepted. Never pickle,
never `trust_remote_code`. What a lab allows the weights to differ in from the
base model (`check_weights`) is checked here too, on the saved tensors: the
learner's process could report anything about what it trained.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

# The held-out metrics are the engine's dev metrics: one implementation, in labs.training,
# named here too for the grader's callers.
from labs.training.metrics import classification_metrics as classification_metrics
from labs.training.precision import PRECISIONS, resolve_precision
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
# A change's rank counts its singular values above max(RANK_RTOL * the base matrix's largest,
# FP32_ROUNDING * the saved matrix's Frobenius norm). The first is relative to the trusted
# base, so learner code cannot raise the bar by inflating its own change, and a component a
# ten-thousandth of the base's scale moves no prediction; it also covers the rounding of
# computing the update B @ A itself, relative to the update. The second covers adding the
# update into float32 weights: each entry is off by at most half an ulp, so that noise's
# spectral norm is at most 2^-24 of the saved matrix's Frobenius norm.
RANK_RTOL = 1e-4
FP32_ROUNDING = 2.0**-23


class CheckpointRejected(Exception):
    """The learner's checkpoint cannot be graded; the message is one sentence for them."""


def _NOT_SAFETENSORS() -> str:
    return _("model.safetensors is not a safetensors file (pickles and other formats are refused).")


def _unexpected_tensors(extra: Sequence[str]) -> str:
    return _("The checkpoint has %(count)d unexpected tensor(s), e.g. %(first)s.") % {
        "count": len(extra),
        "first": extra[0],
    }


def _wrong_shape(name: str, shape: tuple[Any, ...], expected: tuple[Any, ...]) -> str:
    return _("Tensor %(name)s has shape %(shape)s, expected %(expected)s.") % {
        "name": name,
        "shape": shape,
        "expected": expected,
    }


@dataclass
class Evaluation:
    """What grading found besides the metrics: the predictions, how long and where, and the
    check of the saved weights against the base model (`check_weights`)."""

    predictions: list[int]
    seconds: float
    samples_per_second: float
    device: str
    weights: dict[str, Any] = field(default_factory=dict)
    # Each text's class probabilities (softmax of its logits), when asked for.
    probabilities: list[list[float]] = field(default_factory=list)


def _read(job_dir: str, name: str, max_bytes: int) -> bytes:
    try:
        return open_job_file(job_dir, f"{CHECKPOINT_DIR}/{name}", max_bytes=max_bytes)
    except FileNotFoundError:
        raise CheckpointRejected(_("The checkpoint has no %(file)s.") % {"file": name}) from None
    except UnsafeJobFile as exc:
        raise CheckpointRejected(
            _("The checkpoint's %(file)s was refused: %(reason)s") % {"file": name, "reason": exc}
        ) from None


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
                _("The checkpoint has no tokenizer (vocab.txt or tokenizer.json).")
            ) from None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise CheckpointRejected(
                _("The checkpoint's tokenizer.json is not a WordPiece tokenizer.")
            ) from missing
        if not isinstance(vocab, dict):
            raise CheckpointRejected(
                _("The checkpoint's tokenizer.json has no vocabulary.")
            ) from None
        return vocab
    except UnicodeDecodeError:
        raise CheckpointRejected(_("The checkpoint's vocab.txt is not UTF-8 text.")) from None


def check_config(
    config: dict[str, Any], *, base_config: dict[str, Any], labels: Sequence[str]
) -> None:
    if config.get("architectures") != [ARCHITECTURE] or config.get("model_type") != "bert":
        raise CheckpointRejected(
            _("The checkpoint must be a %(architecture)s, not %(found)s.")
            % {"architecture": ARCHITECTURE, "found": config.get("architectures")}
        )
    for key in SIZE_KEYS:
        if config.get(key) != base_config.get(key):
            raise CheckpointRejected(
                _(
                    "The checkpoint's %(key)s is %(found)s, but the lab's base model has "
                    "%(base)s: fine-tune the base model, do not change its shape."
                )
                % {"key": key, "found": config.get(key), "base": base_config.get(key)}
            )
    id2label = config.get("id2label") or {}
    if len(id2label) != len(labels):
        raise CheckpointRejected(
            _("The checkpoint predicts %(found)d labels, but the dataset has %(expected)d.")
            % {"found": len(id2label), "expected": len(labels)}
        )
    try:
        ordered = [id2label[str(i)] for i in range(len(labels))]
    except KeyError:
        raise CheckpointRejected(_("The checkpoint's id2label is not numbered 0..n-1.")) from None
    if ordered != list(labels):
        raise CheckpointRejected(_("The checkpoint's labels are not in the dataset's order."))


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
        raise CheckpointRejected(_("The checkpoint's config.json is not valid JSON.")) from None
    if not isinstance(config, dict):
        raise CheckpointRejected(_("The checkpoint's config.json is not a JSON object."))
    check_config(config, base_config=base_config, labels=labels)

    if _learner_vocab(job_dir) != _base_vocab(base_model):
        raise CheckpointRejected(
            _("The checkpoint's tokenizer vocabulary differs from the base model's.")
        )

    # The architecture comes from the trusted base config; only weights come from the learner.
    trusted = BertConfig(
        **{k: v for k, v in base_config.items() if k not in {"architectures", "_name_or_path"}}
    )
    trusted.num_labels = len(labels)
    trusted.id2label = dict(enumerate(labels))
    trusted.label2id = {label: i for i, label in enumerate(labels)}
    model = BertForSequenceClassification(trusted)
    expected = model.state_dict()

    max_weights = int(_base_weights_bytes(base_model) * WEIGHTS_SLACK) + 1024 * 1024
    blob = _read(job_dir, "model.safetensors", max_weights)
    # Names, shapes and dtypes are checked in the header before any tensor is built: a
    # million tiny extra tensors or an exotic dtype is refused without costing memory.
    check_safetensors_header(blob, expected)
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError, OSError):
        raise CheckpointRejected(_NOT_SAFETENSORS()) from None

    # Buffers such as position_ids may legitimately be absent from a checkpoint.
    optional = {k for k in expected if k.endswith("position_ids")}
    missing = sorted(set(expected) - set(tensors) - optional)
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise CheckpointRejected(
            _("The checkpoint is missing %(count)d tensor(s), e.g. %(first)s.")
            % {"count": len(missing), "first": missing[0]}
        )
    if extra:
        raise CheckpointRejected(_unexpected_tensors(extra))
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointRejected(
                _wrong_shape(name, tuple(tensor.shape), tuple(expected[name].shape))
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointRejected(
                _("Tensor %(name)s contains NaN or infinite values: training diverged.")
                % {"name": name}
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=False)
    model.eval()
    return model


# safetensors' dtype names of the dtypes a BERT's state dict holds.
SAFETENSORS_DTYPES = {"float32": "F32", "int64": "I64"}
MAX_HEADER_BYTES = 16 * 1024 * 1024


def check_safetensors_header(blob: bytes, expected: dict[str, Any]) -> None:
    """Refuse a weights file whose header names a tensor the model lacks, or one of the
    model's with another shape or dtype than the base model's (float8, say, or float16).

    The format: 8 bytes of little-endian header length, then a JSON object of name ->
    {dtype, shape, data_offsets}, then the data."""
    not_safetensors = CheckpointRejected(_NOT_SAFETENSORS())
    if len(blob) < 8:
        raise not_safetensors
    size = int.from_bytes(blob[:8], "little")
    if size > len(blob) - 8:
        raise not_safetensors
    if size > MAX_HEADER_BYTES:
        # The base model's header is about 20 KB; a huge one is a million names, say.
        raise CheckpointRejected(
            _(
                "model.safetensors has a %(size)s MB header (at most %(limit)d MB): it lists far "
                "more tensors than the model has."
            )
            % {"size": f"{size / 2**20:.0f}", "limit": MAX_HEADER_BYTES // 2**20}
        )
    try:
        header = json.loads(blob[8 : 8 + size])
    except (ValueError, UnicodeDecodeError):
        raise not_safetensors from None
    if not isinstance(header, dict):
        raise not_safetensors
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    extra = sorted(set(entries) - set(expected))
    if extra:
        raise CheckpointRejected(_unexpected_tensors(extra))
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise not_safetensors
        want = expected[name]
        if entry.get("shape") != list(want.shape):
            raise CheckpointRejected(
                _wrong_shape(name, tuple(entry.get("shape") or ()), tuple(want.shape))
            )
        wanted_dtype = SAFETENSORS_DTYPES.get(str(want.dtype).removeprefix("torch."))
        if entry.get("dtype") != wanted_dtype:
            raise CheckpointRejected(
                _(
                    "Tensor %(name)s is stored as %(dtype)s, but the base model's is "
                    "%(wanted)s: save the model in float32 (the engine's checkpoint is)."
                )
                % {"name": name, "dtype": entry.get("dtype"), "wanted": wanted_dtype}
            )


@dataclass(frozen=True)
class WeightRules:
    """What a saved model may differ in from its base model: a lab's `checkpoint:` rules
    (labs.authoring_schema.LabCheckpoint) and its share cap. Patterns are globs over the
    checkpoint's tensor names; without rules, every tensor may change."""

    may_change: tuple[str, ...] = ("*",)
    low_rank: tuple[str, ...] = ()
    max_rank: int | None = None
    max_share: float | None = None

    def allowed(self) -> str:
        """'classifier.*, bert.pooler.* and rank-≤8 changes to …query.weight, …value.weight'."""
        parts = list(self.may_change)
        if self.low_rank:
            parts.append(
                _("rank-≤%(rank)s changes to %(names)s")
                % {"rank": self.max_rank, "names": ", ".join(self.low_rank)}
            )
        if not parts:
            return _("nothing")
        if len(parts) == 1:
            return parts[0]
        return _("%(first)s and %(last)s") % {"first": ", ".join(parts[:-1]), "last": parts[-1]}


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def _base_counterpart(base: dict[str, Any], name: str, shape: Any) -> Any:
    """The base model's tensor for checkpoint tensor `name`, or None for a new one (the head).

    A base saved as a BertModel names its tensors without the checkpoint's `bert.` prefix."""
    for candidate in (name, name.removeprefix("bert.")):
        tensor = base.get(candidate)
        if tensor is not None and tuple(tensor.shape) == tuple(shape):
            return tensor
    return None


def change_rank(weight: Any, base: Any) -> int:
    """The numerical rank of weight - base (both 2-D): see RANK_RTOL and FP32_ROUNDING."""
    import torch

    # In float64 the difference of two float32 matrices is exact, and the SVD's own error
    # is far below the tolerance.
    delta = weight.double() - base.double()
    sigma = torch.linalg.svdvals(delta)
    tolerance = max(
        RANK_RTOL * float(torch.linalg.matrix_norm(base.double(), ord=2)),
        FP32_ROUNDING * float(torch.linalg.matrix_norm(weight.double())),
    )
    return int((sigma > tolerance).sum())


def _precision_hint(tensor: Any, base: Any) -> str:
    import torch

    for dtype, name in ((torch.bfloat16, "bfloat16"), (torch.float16, "float16")):
        if torch.equal(tensor, base.to(dtype).to(tensor.dtype)):
            return " " + _(
                "(it equals the base rounded to %(dtype)s: save the model in float32)"
            ) % {"dtype": name}
    return ""


def check_weights(model: Any, *, base_model: str, rules: WeightRules) -> dict[str, Any]:
    """Compare the loaded checkpoint with the base model's own weights under `rules`.

    Returns the report the learner is shown (changed and total parameters, the share, each
    changed tensor with its kind and rank), or raises CheckpointRejected naming the first
    tensor that breaks a rule. A freely changed tensor counts all its parameters; a low-rank
    change of rank r to an m x n matrix counts r * (m + n), what the adapter that made it
    needs.
    """
    import torch
    from safetensors.torch import load_file

    base = load_file(str(Path(base_model) / "model.safetensors"))
    changed: list[dict[str, Any]] = []
    total = 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            total += tensor.numel()
            reference = _base_counterpart(base, name, tensor.shape)
            if reference is not None and torch.equal(tensor, reference.to(tensor.dtype)):
                continue
            changed.append(_judge_change(name, tensor, reference, rules))
    changed_params = sum(entry["params"] for entry in changed)
    share = changed_params / total if total else 0.0
    if rules.max_share is not None and share > rules.max_share:
        raise CheckpointRejected(
            _(
                "The saved model differs from the base model in %(changed)s of %(total)s "
                "parameters (%(share)s); this lab allows at most %(cap)s%%."
            )
            % {
                "changed": number_format(changed_params, force_grouping=True),
                "total": number_format(total, force_grouping=True),
                "share": f"{share:.2%}",
                "cap": f"{rules.max_share * 100:g}",
            }
        )
    return {
        "changed_params": changed_params,
        "total_params": total,
        "share": share,
        "max_share": rules.max_share,
        "max_rank": rules.max_rank,
        "tensors": changed,
    }


def _judge_change(name: str, tensor: Any, reference: Any, rules: WeightRules) -> dict[str, Any]:
    shape = list(tensor.shape)
    if _matches(name, rules.may_change):
        return {"name": name, "kind": "free", "shape": shape, "params": tensor.numel()}
    allowed = _("this lab allows changes only to %(allowed)s") % {"allowed": rules.allowed()}
    if reference is None:
        raise CheckpointRejected(
            _("%(name)s is not in the base model (it is new), but %(allowed)s.")
            % {"name": name, "allowed": allowed}
        )
    if not _matches(name, rules.low_rank):
        hint = _precision_hint(tensor, reference)
        raise CheckpointRejected(
            _("%(name)s changed%(hint)s, but %(allowed)s.")
            % {"name": name, "hint": hint, "allowed": allowed}
        )
    if tensor.dim() != 2:
        raise CheckpointRejected(
            _(
                "%(name)s changed, but it is not a matrix, so it cannot change by low rank; "
                "%(allowed)s."
            )
            % {"name": name, "allowed": allowed}
        )
    rank = change_rank(tensor, reference)
    if rules.max_rank is not None and rank > rules.max_rank:
        raise CheckpointRejected(
            _("%(name)s changed with rank %(rank)d; this lab allows at most rank %(max)d.")
            % {"name": name, "rank": rank, "max": rules.max_rank}
        )
    rows, cols = shape
    return {
        "name": name,
        "kind": "low_rank",
        "shape": shape,
        "rank": rank,
        "params": rank * (rows + cols),
    }


def inference_precision(device: str, requested: str = "auto") -> str:
    """The number format the grader computes in: bf16 where the hardware has it natively.

    On a CUDA GPU, and on CPUs with AMX or AVX-512 BF16 units, bf16 inference is several
    times faster than fp32 and changes a prediction only where two logits nearly tie
    (bench/grading.py measures both). Elsewhere bf16 would be emulated, slower than fp32.
    The rule is the engine's too (labs.training.precision).
    """
    return resolve_precision(requested, device)


def predict(
    model: Any,
    texts: Sequence[str],
    *,
    base_model: str,
    device: str | None = None,
    precision: str = "auto",
    on_batch: Callable[[], None] = lambda: None,
    with_probabilities: bool = False,
) -> Evaluation:
    """Batched, length-sorted, dynamically padded inference on the held-out texts as given
    (served through the learner's preprocess by the worker, or raw).

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
    probabilities: list[list[float]] = [[] for _ in encoded] if with_probabilities else []
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
            if with_probabilities:
                rows = torch.softmax(logits.float(), dim=-1).tolist()
                for i, row in zip(batch, rows, strict=True):
                    probabilities[i] = row
            on_batch()
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    return Evaluation(
        predictions,
        seconds,
        len(texts) / seconds if seconds else 0.0,
        f"{name} ({precision})",
        probabilities=probabilities,
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

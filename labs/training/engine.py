"""The fine-tuning loop: plain PyTorch + transformers, no framework around it.

`train(spec)` reads the learner's code and the CSVs named in the spec,
fine-tunes the base model with the learner's HYPERPARAMETERS and hooks,
reports progress through `on_event`, and saves `config.json` +
`model.safetensors` + tokenizer files to `spec.output_dir`.

Where the time goes, and why it is spent well:
- texts are tokenised once, without padding; each batch is padded only to
  its own longest text, and batches are built from texts of similar length
  (shuffled, then sorted within "mega-batches"), so little compute is spent
  on pad tokens (`batching`, which the grader pads its predictions with too);
- the loss is kept on the device between progress events, so a step never
  waits for a `.item()` round trip;
- AdamW runs as one fused kernel (CUDA and CPU); the forward and backward run
  under bf16 autocast when the spec says "bf16" (the worker decides: a GPU, or a
  CPU with native bf16 units; labs.training.precision), else in fp32.

Dev metrics come from `metrics`, the grader's own implementation.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F

from labs.training.batching import length_grouped_batches, pad_batch, sorted_batches
from labs.training.contract import (
    EARLY_STOPPING_METRICS,
    LearnerCode,
    LearnerCodeError,
    load_learner_code,
    preprocess_texts,
    resolve_hyperparameters,
)
from labs.training.data import DataError, read_csv
from labs.training.events import (
    ANALYSIS_CONFUSIONS,
    ANALYSIS_MISTAKES,
    ANALYSIS_TEXT_CHARS,
    CODE_IMPORTED,
    LOADING_CODE,
)
from labs.training.metrics import accuracy, macro_f1
from labs.training.spec import RunSpec, SpecError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

Event = dict[str, Any]
EventSink = Callable[[Event], None]


def _ignore(event: Event) -> None:
    return None


def _never() -> bool:
    return False


def train(
    spec: RunSpec,
    *,
    on_event: EventSink = _ignore,
    should_stop: Callable[[], bool] = _never,
) -> dict[str, Any]:
    """Run one fine-tuning job; return the `done` (or `stopped`) event payload.

    Raises LearnerCodeError when the learner's code fails, SpecError or
    DataError when the spec or its files are unusable; anything else is a
    platform fault.
    """
    started = time.perf_counter()
    # The last event the learner's code cannot have written (see labs/training/events.py).
    on_event({"event": LOADING_CODE})
    learner = load_learner_code(spec.code_file)
    on_event({"event": CODE_IMPORTED})
    hp, cap_warnings = resolve_hyperparameters(learner.raw_hyperparameters, spec)
    seed_everything(hp["seed"])  # before the model loads: the new classifier head is random
    device = pick_device(spec.device)
    set_threads(spec.threads)
    tokenizer = load_tokenizer(spec.base_model)
    train_set = encode(spec.train_file, spec.labels, learner, tokenizer, hp["max_length"])
    dev_set = encode(spec.dev_file, spec.labels, learner, tokenizer, hp["max_length"])
    run = _set_up_run(spec, hp, learner, device, len(train_set), on_event, should_stop)
    run.pad_id = tokenizer.pad_token_id or 0  # BERT's [PAD] is 0; a tokenizer may lack one

    on_event(_start_event(run, train_set, dev_set))
    for message in learner.warnings + cap_warnings:
        on_event({"event": "warning", "message": message})
    if not run.fit(train_set, dev_set):
        stopped = {"event": "stopped", "step": run.step, "elapsed_s": _since(started)}
        on_event(stopped)
        return stopped
    if learner.has("after_training"):
        run.after_training(dev_set)
    # The model about to be saved, on the dev split: what it gets wrong, and how.
    on_event(dev_analysis_event(run.dev_predictions(dev_set), dev_set.texts))
    save_checkpoint(
        run.model, tokenizer, spec.output_dir, learner=learner, base_shapes=run.base_shapes
    )
    done = _done_event(run, started)
    on_event(done)
    return done


def _set_up_run(
    spec: RunSpec,
    hp: dict[str, Any],
    learner: LearnerCode,
    device: torch.device,
    train_examples: int,
    on_event: EventSink,
    should_stop: Callable[[], bool],
) -> _Run:
    model, base_shapes = build_model(spec, learner, device)
    check_trainable_share(model, spec.max_trainable_share)
    optimizer = build_optimizer(model, hp, learner)
    steps_per_epoch = math.ceil(train_examples / hp["batch_size"])
    total_steps = steps_per_epoch * hp["epochs"]
    return _Run(
        spec=spec,
        hp=hp,
        learner=learner,
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, total_steps, hp, learner),
        device=device,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        on_event=on_event,
        should_stop=should_stop,
        base_shapes=base_shapes,
    )


def _done_event(run: _Run, started: float) -> Event:
    return {
        "event": "done",
        "wall_s": _since(started),
        "samples_per_s": run.samples_per_s(),
        "device": run.device.type,
        "checkpoint": run.spec.output_dir,
        "final_dev_accuracy": run.last_dev_accuracy,
        **run.parameter_counts,
        "best_epoch": run.best_epoch,
        "stopped_early": run.stopped_early,
    }


# ---------------------------------------------------------------- dev error analysis


def dev_analysis_event(dev: DevPredictions, texts: Sequence[str]) -> Event:
    """The dev examples the model gets wrong with the highest loss (text, true and predicted
    label, the model's confidence in its prediction), and its most frequent confusions
    (true → predicted, how often, with the costliest example of each).

    Only the dev split is looked at: it is carved from the training data (or is the
    dataset's own dev split), and the held-out texts never reach this process."""
    names = dev.label_names
    probabilities = dev.logits.softmax(dim=-1)
    confidence, predicted = probabilities.max(dim=-1)
    losses = F.cross_entropy(dev.logits, dev.labels, reduction="none")
    gold = dev.labels.tolist()
    guessed, losses_list, confidences = predicted.tolist(), losses.tolist(), confidence.tolist()
    wrong = sorted(
        (i for i in range(len(gold)) if guessed[i] != gold[i]), key=lambda i: -losses_list[i]
    )

    def text(i: int) -> str:
        return texts[i][:ANALYSIS_TEXT_CHARS] if i < len(texts) else ""

    mistakes = [
        {
            "text": text(i),
            "label": names[gold[i]],
            "predicted": names[guessed[i]],
            "confidence": round(confidences[i], 4),
            "loss": round(losses_list[i], 4),
        }
        for i in wrong[:ANALYSIS_MISTAKES]
    ]
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in wrong:  # costliest first, so each pair's first example is its worst
        pairs.setdefault((gold[i], guessed[i]), []).append(i)
    ranked = sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))
    confusions = [
        {
            "label": names[g],
            "predicted": names[p],
            "count": len(examples),
            "example": text(examples[0]),
        }
        for (g, p), examples in ranked[:ANALYSIS_CONFUSIONS]
    ]
    return {
        "event": "dev_analysis",
        "dev_examples": len(gold),
        "dev_mistakes": len(wrong),
        "mistakes": mistakes,
        "confusions": confusions,
    }


# ---------------------------------------------------------------- set-up


def seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # numpy is optional for the engine itself
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def pick_device(preference: str) -> torch.device:
    if preference == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 for what autocast leaves in fp32
        return torch.device("cuda")
    if preference == "cuda":
        # A GPU worker that cannot see its GPU should fail loudly, not train 50x slower.
        raise SpecError("the run spec asks for device 'cuda' but torch sees no CUDA device.")
    return torch.device("cpu")


def set_threads(requested: int | None) -> None:
    """Use `requested` intra-op threads, or as many as the CPUs this process may really use.

    torch counts the machine's cores, not a container's CPU quota; more busy
    threads than CPUs makes every OpenMP barrier wait on a descheduled thread,
    which on a 2-CPU quota can be 10x slower, not 2x.
    """
    threads = requested or min(torch.get_num_threads(), cpu_budget())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)


def cpu_budget() -> int:
    """CPUs this process may run on: the affinity mask, lowered by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cpus, math.floor(quota))) if quota else cpus


def _cgroup_cpu_quota() -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None when there is none or it cannot be read."""
    candidates = (
        ("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "max 100000" or "150000 100000"
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    for quota_file, period_file in candidates:
        try:
            fields = Path(quota_file).read_text().split()
            if period_file:
                fields.append(Path(period_file).read_text().strip())
        except OSError:
            continue
        if len(fields) < 2 or fields[0] in ("max", "-1"):
            return None
        try:
            return int(fields[0]) / int(fields[1])
        except (ValueError, ZeroDivisionError):
            return None
    return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    if not (Path(base_model) / "config.json").is_file():
        raise SpecError(f"the base model folder {base_model} has no config.json.")
    tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
    if not tokenizer.is_fast:
        raise SpecError(f"the base model at {base_model} has no fast (tokenizer.json) tokenizer.")
    return tokenizer


@dataclass
class Encoded:
    """A tokenised split: unpadded token ids, their lengths and class ids, and the texts
    as the CSV holds them (before preprocess), for the dev error analysis."""

    ids: list[list[int]]
    labels: list[int]
    texts: list[str] = field(default_factory=list)
    lengths: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = [len(ids) for ids in self.ids]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class DevPredictions:
    """What `after_training(model, dev)` is given: the trained model's logits on the dev
    split (one row per dev text, float32, on the CPU), the gold class ids in the same order,
    and the label names in class-id order."""

    logits: torch.Tensor
    labels: torch.Tensor
    label_names: list[str]


def encode(
    path: str, labels: Sequence[str], learner: LearnerCode, tokenizer: Any, max_length: int
) -> Encoded:
    rows = read_csv(path)  # never empty: the parser refuses a file without rows
    label_ids = {label: i for i, label in enumerate(labels)}
    unknown = sorted({label for _, label in rows} - set(label_ids))
    if unknown:
        raise DataError(
            f"{path} has label(s) {', '.join(map(repr, unknown))} not in the spec's labels."
        )
    texts = preprocess_texts(learner, [text for text, _ in rows])
    # One batched call to the Rust tokenizer; padding is left to each batch.
    ids = tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]
    return Encoded(
        ids=ids, labels=[label_ids[label] for _, label in rows], texts=[text for text, _ in rows]
    )


def build_model(
    spec: RunSpec, learner: LearnerCode, device: torch.device
) -> tuple[torch.nn.Module, dict[str, tuple[int, ...]]]:
    """The base model with a fresh head, after prepare_model, on the device.

    Also returns the tensor names and shapes of the model before prepare_model
    touched it: what the saved checkpoint must hold once adapters are merged.
    """
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        spec.base_model,
        num_labels=len(spec.labels),
        id2label=dict(enumerate(spec.labels)),
        label2id={label: i for i, label in enumerate(spec.labels)},
        problem_type="single_label_classification",
        local_files_only=True,
        trust_remote_code=False,
    )
    base_shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if learner.has("prepare_model"):
        model = learner.call("prepare_model", model)
        _require_pretrained(model)  # fail now, not after the whole run
    # Moved after prepare_model so modules the learner added come along.
    return model.to(device), base_shapes


def parameter_counts(model: torch.nn.Module) -> dict[str, Any]:
    trainable = count_parameters(model, trainable_only=True)
    total = count_parameters(model)
    return {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_share": trainable / total if total else 0.0,
    }


def check_trainable_share(model: torch.nn.Module, cap: float | None) -> None:
    """Refuse, before any training, a model that trains more than the lab allows."""
    if cap is None:
        return
    counts = parameter_counts(model)
    if counts["trainable_share"] > cap:
        raise LearnerCodeError(
            f"prepare_model() left {counts['trainable_params']:,} of {counts['total_params']:,} "
            f"parameters trainable ({counts['trainable_share']:.1%}); this lab allows at most "
            f"{cap:.0%}: freeze the base model's weights (requires_grad_(False)) and train only "
            "the adapters and the classifier."
        )


def build_optimizer(
    model: torch.nn.Module, hp: dict[str, Any], learner: LearnerCode
) -> torch.optim.Optimizer:
    if learner.has("build_optimizer"):
        return learner.call("build_optimizer", model, dict(hp))
    return default_optimizer(model, hp, blame_learner=learner.has("prepare_model"))


def default_optimizer(
    model: torch.nn.Module, hp: dict[str, Any], *, blame_learner: bool = False
) -> torch.optim.Optimizer:
    """AdamW; biases and LayerNorm weights (the 1-d parameters) get no weight decay."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    if not decay and not no_decay:
        if blame_learner:
            raise LearnerCodeError("prepare_model() left the model with no trainable parameters.")
        raise RuntimeError("the base model has no trainable parameters")
    groups = [
        {"params": params, "weight_decay": wd}
        for params, wd in ((decay, hp["weight_decay"]), (no_decay, 0.0))
        if params
    ]
    try:
        # One fused kernel per step, on CUDA and (torch >= 2.4) on CPU too: measured on
        # MiniLM with 1 CPU thread, 0.03 s per step against 0.21 s for foreach.
        return torch.optim.AdamW(groups, lr=hp["learning_rate"], fused=True)
    except (RuntimeError, ValueError):
        # e.g. parameters on a device or in a dtype the fused kernel does not cover.
        return torch.optim.AdamW(groups, lr=hp["learning_rate"], foreach=True)


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, hp: dict[str, Any], learner: LearnerCode
) -> Any:
    if learner.has("build_scheduler"):
        return learner.call("build_scheduler", optimizer, total_steps, dict(hp))
    return default_scheduler(optimizer, total_steps, hp)


def default_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, hp: dict[str, Any]
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_ratio` of the steps, then linear decay to zero."""
    warmup = math.ceil(total_steps * hp["warmup_ratio"])

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)  # never exactly 0: the first step still learns
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def default_training_step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], hp: dict[str, Any]
) -> torch.Tensor:
    """Cross-entropy (with the learner's label smoothing) on the model's logits."""
    logits = forward_logits(model, batch)
    return F.cross_entropy(logits.float(), batch["labels"], label_smoothing=hp["label_smoothing"])


def forward_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    # Labels are left out on purpose: the model would compute a second, unused loss.
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return outputs.logits if hasattr(outputs, "logits") else outputs[0]


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------- batches


def collate(
    data: Encoded, indices: Sequence[int], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Pad a batch to its own longest example (the shared rule) and move it to the device."""
    batch = pad_batch([data.ids[i] for i in indices], pad_id)
    batch["labels"] = torch.tensor([data.labels[i] for i in indices], dtype=torch.long)
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}


# ---------------------------------------------------------------- the loop


@dataclass
class _Run:
    """State of one training run, so the loop's pieces stay short."""

    spec: RunSpec
    hp: dict[str, Any]
    learner: LearnerCode
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    steps_per_epoch: int
    total_steps: int
    on_event: EventSink
    should_stop: Callable[[], bool]
    base_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    pad_id: int = 0
    step: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    last_dev_accuracy: float | None = None
    best_epoch: int | None = None
    stopped_early: bool = False

    def __post_init__(self) -> None:
        # Counted once, after prepare_model: merging adapters at the end changes the count.
        self.parameter_counts = parameter_counts(self.model)
        self.started = time.perf_counter()
        self.epoch_started: float | None = None
        self.batch_rng = random.Random(self.hp["seed"])  # own stream: dropout must not move it
        self.window_loss = torch.zeros((), device=self.device)
        self.window_steps = 0
        patience = self.hp["early_stopping_patience"]
        self.early_stopping = (
            None if patience is None else EarlyStopping(patience, self.hp["early_stopping_metric"])
        )

    def fit(self, train_set: Encoded, dev_set: Encoded) -> bool:
        """Train every epoch; False when `should_stop` cut the run short."""
        for epoch in range(1, self.hp["epochs"] + 1):
            epoch_loss = torch.zeros((), device=self.device)
            self.model.train()  # evaluate() leaves it in eval mode
            batches = length_grouped_batches(
                train_set.lengths, self.hp["batch_size"], self.batch_rng
            )
            # Training time counts batching and collation too, but not evaluation.
            self.epoch_started = time.perf_counter()
            for indices in batches:
                if self.should_stop():
                    return False
                loss = self.train_step(collate(train_set, indices, self.pad_id, self.device))
                epoch_loss += loss
                self.samples += len(indices)
                self.after_step(loss)
            self.train_seconds += time.perf_counter() - self.epoch_started
            self.epoch_started = None
            dev = self.evaluate(dev_set)
            self.last_dev_accuracy = dev["dev_accuracy"]
            self.on_event(
                {
                    "event": "epoch",
                    "epoch": epoch,
                    "train_loss": (epoch_loss / len(batches)).item(),
                    **dev,
                }
            )
            if self.early_stopping is not None and self.early_stopping.after_epoch(
                epoch, dev, self.model
            ):
                self.stopped_early = epoch < self.hp["epochs"]
                break
        if self.early_stopping is not None:
            self.best_epoch = self.early_stopping.restore_best(self.model)
            best = self.early_stopping
            if self.stopped_early:
                self.on_event(
                    {
                        "event": "early_stop",
                        "epoch": epoch,
                        "best_epoch": best.best_epoch,
                        "metric": best.metric,
                        "best_value": best.best_value,
                    }
                )
            self.last_dev_accuracy = best.best_dev_accuracy
        return True

    def train_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self._autocast(), self._blame_model():
            if self.learner.has("training_step"):
                loss = self.learner.call("training_step", self.model, batch, dict(self.hp))
            else:
                loss = default_training_step(self.model, batch, self.hp)
        with self._blame("loss.backward() on the loss from training_step()", "training_step"):
            loss.backward()
        if self.hp["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hp["grad_clip"])
        with self._blame(
            "optimizer.step() of the optimizer from build_optimizer()", "build_optimizer"
        ):
            self.optimizer.step()
        with self._blame(
            "scheduler.step() of the scheduler from build_scheduler()", "build_scheduler"
        ):
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach().float().reshape(())

    def after_step(self, loss: torch.Tensor) -> None:
        self.step += 1
        self.window_loss += loss
        self.window_steps += 1
        if self.step % self.spec.progress_every and self.step != self.total_steps:
            return
        # The only host sync in the loop, once per progress event.
        window_loss = (self.window_loss / self.window_steps).item()
        if not math.isfinite(window_loss):
            self._diverged(window_loss)
        self.on_event(
            {
                "event": "step",
                "step": self.step,
                "total_steps": self.total_steps,
                "epoch": round(self.step / self.steps_per_epoch, 4),
                "loss": window_loss,
                "lr": float(self.optimizer.param_groups[0]["lr"]),
                "samples_per_s": self.samples_per_s(),
                "elapsed_s": _since(self.started),
            }
        )
        self.window_loss.zero_()
        self.window_steps = 0

    def _diverged(self, loss: float) -> None:
        """A NaN or infinite loss poisons every weight it reaches: stop and say where."""
        first = self.step - self.window_steps + 1
        where = f"step {self.step}" if first == self.step else f"steps {first} to {self.step}"
        if self.learner.has("training_step"):
            cause = "Check what your training_step() returns (a log of 0, a division by zero?)."
        else:
            cause = "Training diverged: lower the learning rate or keep gradient clipping on."
        raise LearnerCodeError(
            f"The training loss was {loss} (not a finite number) at {where} of "
            f"{self.total_steps}. {cause}"
        )

    def eval_batch_size(self) -> int:
        """Evaluation keeps no gradients: up to twice the training batch, within the cap."""
        return max(self.hp["batch_size"], min(2 * self.hp["batch_size"], self.spec.max_batch_size))

    def after_training(self, dev_set: Encoded) -> None:
        """The learner's last word before the model is saved: calibrate on dev (an
        out-of-scope logit bias, say) and bake it into the weights. The dev numbers the run
        reports are the calibrated model's."""
        dev = self.dev_predictions(dev_set)
        with self._blame_model(), torch.no_grad():
            self.learner.call("after_training", self.model, dev)
        metrics = self.evaluate(dev_set)
        self.last_dev_accuracy = metrics["dev_accuracy"]
        self.on_event({"event": "after_training", **metrics})

    @torch.inference_mode()
    def dev_predictions(self, data: Encoded) -> DevPredictions:
        """The model's logits on the dev split, in its order, with the gold labels."""
        self.model.eval()
        size = self.eval_batch_size()
        logits = torch.empty(len(data), len(self.spec.labels), device=self.device)
        for indices in sorted_batches(data.lengths, size):
            batch = collate(data, indices, self.pad_id, self.device)
            with self._autocast(), self._blame_model():
                logits[torch.tensor(indices, device=self.device)] = forward_logits(
                    self.model, batch
                ).float()
        return DevPredictions(
            logits=logits.cpu(),
            labels=torch.tensor(data.labels),
            label_names=list(self.spec.labels),
        )

    @torch.inference_mode()
    def evaluate(self, data: Encoded) -> dict[str, float]:
        """Mean cross-entropy, accuracy and macro-F1 on `data` (no label smoothing)."""
        self.model.eval()
        size = self.eval_batch_size()
        n = len(self.spec.labels)
        loss_sum = torch.zeros((), device=self.device)
        # Confusion counts gold * n + predicted, kept on the device: one sync at the end.
        confusion = torch.zeros(n * n, device=self.device, dtype=torch.long)
        for indices in sorted_batches(data.lengths, size):
            batch = collate(data, indices, self.pad_id, self.device)
            with self._autocast(), self._blame_model():
                logits = forward_logits(self.model, batch).float()
            loss_sum += F.cross_entropy(logits, batch["labels"], reduction="sum")
            cells = batch["labels"] * n + logits.argmax(dim=-1)
            confusion += torch.bincount(cells, minlength=n * n)
        # The grader's own metrics, so the dev numbers mean what the held-out ones do.
        matrix = confusion.view(n, n).tolist()
        return {
            "dev_loss": (loss_sum / len(data)).item(),
            "dev_accuracy": accuracy(matrix),
            "dev_macro_f1": macro_f1(matrix),
        }

    def samples_per_s(self) -> float:
        """Training examples per second of training time (evaluation excluded)."""
        seconds = self.train_seconds
        if self.epoch_started is not None:
            seconds += time.perf_counter() - self.epoch_started
        return self.samples / seconds if seconds else 0.0

    def _autocast(self) -> AbstractContextManager[Any]:
        # bf16 needs no loss scaling; the weights and the optimiser's state stay fp32.
        if self.spec.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _blame_model(self) -> AbstractContextManager[Any]:
        # A forward pass that fails on a model the learner reshaped is their bug.
        return self._blame("the model returned by prepare_model()", "prepare_model")

    def _blame(self, what: str, hook: str) -> AbstractContextManager[Any]:
        return self.learner.blame(what) if self.learner.has(hook) else nullcontext()


class EarlyStopping:
    """Watch one dev metric; remember the best epoch's weights; say when to stop."""

    def __init__(self, patience: int, metric: str) -> None:
        self.patience = patience
        self.metric = metric
        self.higher_is_better = EARLY_STOPPING_METRICS[metric]
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_dev_accuracy: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_gain = 0
        self.last_epoch = 0

    def after_epoch(self, epoch: int, dev: dict[str, float], model: torch.nn.Module) -> bool:
        """Record this epoch; True when training should stop now."""
        self.last_epoch = epoch
        value = dev[self.metric]
        if self.best_value is None or (
            value > self.best_value if self.higher_is_better else value < self.best_value
        ):
            self.best_value, self.best_epoch = value, epoch
            self.best_dev_accuracy = dev["dev_accuracy"]
            # A copy on the CPU: the model keeps training on the device.
            self.best_state = {
                name: tensor.detach().to("cpu", copy=True)
                for name, tensor in model.state_dict().items()
            }
            self.epochs_without_gain = 0
            return False
        self.epochs_without_gain += 1
        return self.epochs_without_gain >= self.patience

    def restore_best(self, model: torch.nn.Module) -> int | None:
        """Load the best epoch's weights back (if a later epoch was worse); return that epoch."""
        if self.best_state is not None and self.best_epoch != self.last_epoch:
            model.load_state_dict(self.best_state)
        self.best_state = None
        return self.best_epoch


def _start_event(run: _Run, train_set: Encoded, dev_set: Encoded) -> Event:
    return {
        "event": "start",
        "device": run.device.type,
        "device_name": device_name(run.device),
        "precision": run.spec.precision,
        "total_steps": run.total_steps,
        "epochs": run.hp["epochs"],
        "train_examples": len(train_set),
        "dev_examples": len(dev_set),
        **run.parameter_counts,
        "hyperparameters": dict(run.hp),
    }


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


# ---------------------------------------------------------------- saving


def _require_pretrained(model: torch.nn.Module) -> None:
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise LearnerCodeError(
            f"prepare_model() returned a {type(model).__name__}, which is not a Hugging Face "
            "PreTrainedModel, so it cannot be saved for grading; change the model you were "
            "given in place and return it."
        )


def export_for_grading(
    model: torch.nn.Module,
    *,
    learner: LearnerCode | None = None,
    base_shapes: dict[str, tuple[int, ...]] | None = None,
) -> PreTrainedModel:
    """The model the grader will load: a plain PreTrainedModel with the base tensors.

    Adapter modules that `prepare_model` added (anything below the model with a
    `merge()` method, see the contract) are replaced by what `merge()` returns.
    Then the tensors must be the base model's, by name and shape, or the run
    fails with the first one that is not.
    """
    _require_pretrained(model)
    merged = merge_adapters(model, learner=learner)
    if base_shapes:
        check_base_tensors(model, base_shapes, merged=merged)
    return cast("PreTrainedModel", model)  # _require_pretrained checked it


def merge_adapters(model: torch.nn.Module, *, learner: LearnerCode | None = None) -> list[str]:
    """Replace every module below `model` that has `merge()` by its result; return their names."""
    merged: list[str] = []

    def visit(parent: torch.nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            path = f"{prefix}{name}"
            merge = getattr(child, "merge", None)
            if not callable(merge):
                visit(child, f"{path}.")
                continue
            what = f"merge() of the adapter at {path}"
            with learner.blame(what) if learner else nullcontext():
                replacement = merge()
            if not isinstance(replacement, torch.nn.Module):
                raise LearnerCodeError(
                    f"{what} must return a torch.nn.Module (the merged layer), "
                    f"got {type(replacement).__name__}."
                )
            setattr(parent, name, replacement)
            merged.append(path)

    with torch.no_grad():
        visit(model, "")
    return merged


def check_base_tensors(
    model: torch.nn.Module, base_shapes: dict[str, tuple[int, ...]], *, merged: list[str]
) -> None:
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    how = (
        f" after merging {len(merged)} adapter(s)"
        if merged
        else " (an adapter needs a merge() method, see the lab's instructions)"
    )
    extra = sorted(set(shapes) - set(base_shapes))
    if extra:
        raise LearnerCodeError(
            f"The trained model has {len(extra)} tensor(s) the base model does not{how}, "
            f"e.g. {extra[0]}; the grader accepts only the base model's tensors."
        )
    missing = sorted(set(base_shapes) - set(shapes))
    if missing:
        raise LearnerCodeError(
            f"The trained model lacks {len(missing)} of the base model's tensor(s){how}, "
            f"e.g. {missing[0]}."
        )
    for name, shape in shapes.items():
        if shape != base_shapes[name]:
            raise LearnerCodeError(
                f"Tensor {name} has shape {shape}, but the base model's is {base_shapes[name]}."
            )


def save_checkpoint(
    model: torch.nn.Module,
    tokenizer: Any,
    output_dir: str,
    *,
    learner: LearnerCode | None = None,
    base_shapes: dict[str, tuple[int, ...]] | None = None,
) -> None:
    """Write config.json + model.safetensors + tokenizer files; never a pickle."""
    export = export_for_grading(model, learner=learner, base_shapes=base_shapes)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # transformers >= 4.35 writes safetensors by default and 5.x only writes safetensors.
    export.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if not (out / "model.safetensors").is_file():
        raise RuntimeError(f"save_pretrained did not write {out / 'model.safetensors'}")
    for path in out.iterdir():
        # transformers 5 writes weights through a 0600 temp file; the grader may run as
        # another user than the sandbox, so make the checkpoint readable, not writable.
        if path.is_file() and not path.is_symlink():
            path.chmod(0o644)

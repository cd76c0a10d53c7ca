"""The grader's intake of untrusted checkpoints, its metrics and the rubric."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from grading.evaluation import (
    CheckpointRejected,
    classification_metrics,
    load_checkpoint,
    predict,
    rubric_score,
)
from labs.training import metrics as shared_metrics
from tests.conftest import tiny_model  # noqa: F401  (fixture)

LABELS = ["bad", "good", "meh"]


@pytest.fixture
def job(tmp_path: Path, tiny_model: str) -> Path:  # noqa: F811
    """A job folder holding a valid checkpoint of the tiny base model with a 3-label head."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={k: i for i, k in enumerate(LABELS)},
        local_files_only=True,
    )
    checkpoint = tmp_path / "job" / "checkpoint"
    model.save_pretrained(checkpoint, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(tiny_model) / name, checkpoint / name)
    return tmp_path / "job"


def edit_config(job: Path, **changes: object) -> None:
    path = job / "checkpoint" / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def rewrite_tensors(job: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    path = job / "checkpoint" / "model.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


def rejected(job: Path, tiny_model: str, labels=LABELS) -> str:  # noqa: F811
    with pytest.raises(CheckpointRejected) as info:
        load_checkpoint(str(job), base_model=tiny_model, labels=labels)
    return str(info.value)


def test_a_valid_checkpoint_loads_and_predicts(job, tiny_model):  # noqa: F811
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    evaluation = predict(
        model, ["great gain", "a much longer text " * 20, "loss"], base_model=tiny_model
    )
    assert len(evaluation.predictions) == 3
    assert all(0 <= p < 3 for p in evaluation.predictions)
    assert evaluation.device in {"CPU (fp32)", "CPU (bf16)"}


def varied_texts(n: int = 40) -> list[str]:
    import random

    words = [
        "profit",
        "loss",
        "rally",
        "crash",
        "guidance",
        "beats",
        "misses",
        "shares",
        "bank",
        "rate",
        "cut",
        "hike",
        "tweet",
    ]
    rng = random.Random(7)
    return [" ".join(rng.choices(words, k=rng.randint(1, 40))) for _ in range(n)]


def one_at_a_time(model, texts: list[str], tiny_model: str) -> list[int]:  # noqa: F811
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    with torch.inference_mode():
        return [int(model(**tokenizer(t, return_tensors="pt")).logits.argmax()) for t in texts]


def spread_predictions(job: Path, texts: list[str], tiny_model: str) -> None:  # noqa: F811
    """A freshly initialised tiny BERT gives every text the same label: give the checkpoint
    large random weights and a head centred on these texts, so its predictions depend on them."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    def change(tensors):
        generator = torch.Generator().manual_seed(3)
        for name, tensor in tensors.items():
            if tensor.dim() == 2:
                tensors[name] = torch.randn(tensor.shape, generator=generator) * 0.5

    rewrite_tensors(job, change)
    model = BertForSequenceClassification.from_pretrained(job / "checkpoint").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)
    with torch.inference_mode():
        pooled = torch.stack(
            [model.bert(**tokenizer(t, return_tensors="pt")).pooler_output[0] for t in texts]
        )
    weight = model.classifier.weight.detach()
    rewrite_tensors(
        job, lambda tensors: tensors.update({"classifier.bias": -weight @ pooled.mean(0)})
    )


def test_batched_padded_grading_predicts_what_one_text_at_a_time_does(job, tiny_model):  # noqa: F811
    texts = varied_texts()
    spread_predictions(job, texts, tiny_model)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    expected = one_at_a_time(model, texts, tiny_model)
    assert min(expected.count(k) for k in range(3)) >= 5, "the check needs varied predictions"

    evaluation = predict(model, texts, base_model=tiny_model, precision="fp32")

    assert evaluation.predictions == expected
    assert evaluation.device == "CPU (fp32)"


def test_bf16_grading_reports_its_precision_and_agrees_with_fp32(job, tiny_model):  # noqa: F811
    texts = varied_texts()
    spread_predictions(job, texts, tiny_model)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    expected = one_at_a_time(model, texts, tiny_model)

    evaluation = predict(model, texts, base_model=tiny_model, precision="bf16")

    assert evaluation.device == "CPU (bf16)"
    agreement = sum(a == b for a, b in zip(evaluation.predictions, expected, strict=True))
    assert agreement / len(texts) >= 0.9


def test_an_unknown_grading_precision_is_refused(job, tiny_model):  # noqa: F811
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    with pytest.raises(ValueError, match="precision must be one of"):
        predict(model, ["x"], base_model=tiny_model, precision="fp8")


def test_wrong_label_count_is_rejected(job, tiny_model):  # noqa: F811
    assert "predicts 3 labels, but the dataset has 4" in rejected(
        job, tiny_model, labels=[*LABELS, "extra"]
    )


def test_labels_in_another_order_are_rejected(job, tiny_model):  # noqa: F811
    assert "not in the dataset's order" in rejected(job, tiny_model, labels=["good", "bad", "meh"])


def test_a_different_hidden_size_is_rejected(job, tiny_model):  # noqa: F811
    edit_config(job, hidden_size=64)
    assert "hidden_size is 64" in rejected(job, tiny_model)


def test_another_architecture_is_rejected(job, tiny_model):  # noqa: F811
    edit_config(job, architectures=["GPT2LMHeadModel"])
    assert "must be a BertForSequenceClassification" in rejected(job, tiny_model)


def test_missing_tensor_is_rejected(job, tiny_model):  # noqa: F811
    rewrite_tensors(job, lambda t: t.pop("classifier.weight"))
    assert "missing 1 tensor(s), e.g. classifier.weight" in rejected(job, tiny_model)


def test_extra_tensor_is_rejected(job, tiny_model):  # noqa: F811
    import torch

    rewrite_tensors(job, lambda t: t.__setitem__("backdoor.weight", torch.zeros(2)))
    assert "unexpected tensor(s), e.g. backdoor.weight" in rejected(job, tiny_model)


def test_nan_weights_are_rejected(job, tiny_model):  # noqa: F811
    def poison(tensors):
        tensors["classifier.bias"][0] = float("nan")

    rewrite_tensors(job, poison)
    assert "NaN or infinite" in rejected(job, tiny_model)


def test_a_symlinked_checkpoint_is_refused(job, tiny_model, tmp_path):  # noqa: F811
    weights = job / "checkpoint" / "model.safetensors"
    target = tmp_path / "elsewhere.safetensors"
    weights.rename(target)
    weights.symlink_to(target)
    assert "model.safetensors was refused" in rejected(job, tiny_model)


def test_a_symlink_to_a_host_secret_is_refused(job, tiny_model):  # noqa: F811
    config = job / "checkpoint" / "config.json"
    config.unlink()
    config.symlink_to("/etc/shadow")
    assert "config.json was refused" in rejected(job, tiny_model)


def test_a_pickle_named_model_safetensors_is_refused(job, tiny_model):  # noqa: F811
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch /tmp/academy-pwned",))

    (job / "checkpoint" / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    assert "not a safetensors file" in rejected(job, tiny_model)
    assert not Path("/tmp/academy-pwned").exists()


def test_a_two_gigabyte_file_is_refused_without_reading_it(job, tiny_model):  # noqa: F811
    weights = job / "checkpoint" / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no real disk used
    assert "model.safetensors was refused" in rejected(job, tiny_model)


def test_a_missing_tokenizer_is_rejected(job, tiny_model):  # noqa: F811
    (job / "checkpoint" / "vocab.txt").unlink()
    (job / "checkpoint" / "tokenizer.json").unlink()
    assert "no tokenizer" in rejected(job, tiny_model)


def test_a_changed_vocabulary_is_rejected(job, tiny_model):  # noqa: F811
    vocab = job / "checkpoint" / "vocab.txt"
    vocab.write_text(vocab.read_text().replace("great", "grate", 1))
    assert "vocabulary differs" in rejected(job, tiny_model)


def test_a_missing_checkpoint_is_rejected(tmp_path, tiny_model):  # noqa: F811
    (tmp_path / "job").mkdir()
    assert "no config.json" in rejected(tmp_path / "job", tiny_model)


def test_the_grader_scores_with_the_engines_metrics_not_a_copy():
    assert classification_metrics is shared_metrics.classification_metrics


def test_the_grader_on_the_saved_checkpoint_gets_the_engines_dev_numbers(tmp_path, tiny_model):  # noqa: F811
    """Train the tiny model, then grade its checkpoint on the dev split: the grader's
    batching, padding and metrics must give the numbers the learner watched in training."""
    from labs.training.data import write_csv
    from labs.training.engine import train
    from labs.training.spec import RunSpec
    from tests.training.support import LABELS as KEYWORD_LABELS
    from tests.training.support import hp_code, keyword_rows

    rows = keyword_rows(150, seed=4)
    write_csv(tmp_path / "train.csv", rows[:60])
    write_csv(tmp_path / "dev.csv", rows[60:])
    # Three slow epochs leave the tiny model partly right: two labels of three, mostly.
    (tmp_path / "solution.py").write_text(hp_code(epochs=3, batch_size=8, learning_rate=1e-2))
    events: list[dict] = []
    train(
        RunSpec(
            base_model=tiny_model,
            code_file=str(tmp_path / "solution.py"),
            train_file=str(tmp_path / "train.csv"),
            dev_file=str(tmp_path / "dev.csv"),
            labels=KEYWORD_LABELS,
            output_dir=str(tmp_path / "checkpoint"),
            threads=1,
            device="cpu",  # fp32 on both sides: a GPU's bf16 could move a near tie
        ),
        on_event=events.append,
    )
    last_epoch = [e for e in events if e["event"] == "epoch"][-1]

    model = load_checkpoint(str(tmp_path), base_model=tiny_model, labels=KEYWORD_LABELS)
    dev = rows[60:]
    evaluation = predict(
        model, [t for t, _ in dev], base_model=tiny_model, device="cpu", precision="fp32"
    )
    gold = [KEYWORD_LABELS.index(label) for _, label in dev]
    graded = classification_metrics(gold, evaluation.predictions, KEYWORD_LABELS)

    assert 0.0 < graded["accuracy"] < 1.0, "the check needs a model that is partly right"
    assert len(set(evaluation.predictions)) > 1
    assert graded["accuracy"] == pytest.approx(last_epoch["dev_accuracy"])
    assert graded["macro_f1"] == pytest.approx(last_epoch["dev_macro_f1"])


def test_metrics_match_scikit_learn():
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    gold = [0, 0, 1, 1, 2, 2, 2, 1, 0, 2, 1, 1]
    pred = [0, 1, 1, 1, 2, 0, 2, 2, 0, 2, 1, 0]
    ours = classification_metrics(gold, pred, ["a", "b", "c"])
    assert ours["accuracy"] == pytest.approx(accuracy_score(gold, pred))
    assert ours["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, zero_division=0)
    for row, p, r, f, s in zip(ours["per_class"], precision, recall, f1, support, strict=True):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (p, r, f, s)
        )
    assert ours["confusion_matrix"] == confusion_matrix(gold, pred).tolist()


def test_metrics_with_a_never_predicted_class_match_scikit_learn():
    from sklearn.metrics import f1_score

    gold, pred = [0, 1, 2, 2], [0, 0, 0, 0]
    assert classification_metrics(gold, pred, ["a", "b", "c"])["macro_f1"] == pytest.approx(
        f1_score(gold, pred, average="macro", zero_division=0)
    )


@pytest.mark.parametrize(
    ("value", "score"), [(0.5, 0.0), (0.6, 0.0), (0.7, 25.0), (0.9, 75.0), (1.0, 100.0)]
)
def test_rubric_is_zero_at_baseline_hundred_at_target_linear_between(value, score):
    assert rubric_score(value, baseline=0.6, target=1.0) == pytest.approx(score)


def test_rubric_caps_at_one_hundred_above_the_target():
    assert rubric_score(0.95, baseline=0.6, target=0.9) == 100.0


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float16", "bfloat16"])
def test_a_tensor_in_another_dtype_than_the_bases_is_refused_by_name(job, tiny_model, dtype):  # noqa: F811
    import torch

    def narrow(tensors):
        tensors["classifier.weight"] = tensors["classifier.weight"].to(getattr(torch, dtype))

    rewrite_tensors(job, narrow)
    message = rejected(job, tiny_model)
    assert message.startswith("Tensor classifier.weight is stored as ")
    assert "but the base model's is F32: save the model in float32" in message


def test_a_header_of_many_extra_tensors_is_refused_before_any_is_built(
    job,
    tiny_model,  # noqa: F811
    monkeypatch,
):
    """A header naming 100,000 empty tensors (7 MB, under the tiny model's size limit; the
    real model's allows 1.2M): refused from the header, safetensors never asked to build."""
    import safetensors.torch

    header = {
        f"extra.{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(100_000)
    }
    raw = json.dumps(header).encode()
    (job / "checkpoint" / "model.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw)
    built = []
    real_load = safetensors.torch.load
    monkeypatch.setattr(safetensors.torch, "load", lambda blob: built.append(1) or real_load(blob))

    assert "has 100000 unexpected tensor(s), e.g. extra.0" in rejected(job, tiny_model)
    assert built == []

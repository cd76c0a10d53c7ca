"""Every lab of the shipped course, reduced: its reference and starter code run through the real
sandbox, engine and grader without an error.

Reduced means the tiny random BERT instead of MiniLM, a few examples per label and one epoch:
this proves the code and the plumbing (hooks, adapters merged into a plain checkpoint, early
stopping, class weights, the router metric), not the scores — `manage.py validate_course`
measures those with the real model.
"""

from __future__ import annotations

import ast

import pytest

from labs.models import Example, Lab, Submission
from labs.services.submissions import SubmissionRefused, submission_create
from runs.validation import validate_labs

pytestmark = pytest.mark.django_db

SHIPPED_LABS = [
    "lab-first-fine-tune",
    "lab-learning-rate",
    "lab-many-classes",
    "lab-peft",
    "lab-little-data",
    "lab-capstone",
]
HELDOUT_KEPT = 300  # of each dataset's held-out rows: enough for every metric, fast to predict


@pytest.fixture
def reduced_labs(shipped_course, tiny_model, settings, tmp_path) -> dict[str, Lab]:
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    labs = {lab.module.slug: lab for lab in Lab.objects.filter(module__course=shipped_course)}
    for lab in labs.values():
        heldout = list(
            Example.objects.filter(dataset=lab.dataset, split=Example.Split.HELDOUT)
            .order_by("position")
            .values_list("pk", flat=True)
        )
        # Every k-th row, so that rows kept at the end of a file (CLINC's out-of-scope) stay in.
        keep = set(heldout[:: max(1, len(heldout) // HELDOUT_KEPT)][:HELDOUT_KEPT])
        Example.objects.filter(pk__in=[pk for pk in heldout if pk not in keep]).delete()
        Lab.objects.filter(pk=lab.pk).update(
            base_model=tiny_model,
            # Two examples per label, and never fewer than 60: a stratified split still works.
            train_subset_size=max(60, 2 * len(lab.dataset.labels)),
            max_epochs=1,
        )
        lab.refresh_from_db()
    return labs


def _without(code: str, hook: str) -> str:
    """The code with its top-level `def hook` taken out: the lazy learner's edit."""
    tree = ast.parse(code)
    tree.body = [
        node for node in tree.body if not (isinstance(node, ast.FunctionDef) and node.name == hook)
    ]
    return ast.unparse(tree)


def test_each_shipped_labs_reference_without_a_required_hook_is_refused_naming_it(
    shipped_course, learner
):
    """The learning-rate lab's reference without `build_scheduler` was the first lab's
    reference (the engine's default schedule is the same shape) and passed: each lab's idea
    lives in its required hooks, so a run without one never starts."""
    labs = {lab.module.slug: lab for lab in Lab.objects.filter(module__course=shipped_course)}
    assert "build_scheduler" in labs["lab-learning-rate"].required_hooks
    for slug, lab in labs.items():
        assert lab.required_hooks, slug
        for hook in lab.required_hooks:
            code = _without(lab.reference_solution, hook)
            assert code != ast.unparse(ast.parse(lab.reference_solution)), (slug, hook)
            with pytest.raises(SubmissionRefused, match=f"asks you to write `{hook}`"):
                submission_create(learner=learner, lab=lab, code=code)
    assert not Submission.objects.exists()  # nothing ran, no attempt


def test_every_lab_module_of_the_shipped_course_is_a_real_lab(shipped_course):
    modules = shipped_course.modules.filter(kind="lab").order_by("stage__position", "position")
    assert [m.slug for m in modules] == SHIPPED_LABS
    for module in modules:
        assert module.required, module.slug
        assert module.lab.reference_solution != module.lab.starter_code


@pytest.mark.parametrize("slug", SHIPPED_LABS)
def test_reference_and_starter_run_through_the_sandbox_and_are_graded(reduced_labs, slug):
    lab = reduced_labs[slug]
    log: list[str] = []
    rows, _ = validate_labs([lab], log=log.append)

    runs = {run.validation_of: run for run in Submission.objects.filter(lab=lab)}
    for role in ("reference", "starter"):
        run = runs[role]
        assert run.status == Submission.Status.GRADED, (role, run.error_message, run.log_tail)
        assert run.sandbox_mode == "strict"
        assert run.run_info["trainable_params"] > 0
        assert run.grade.heldout_size == HELDOUT_KEPT
    assert rows[0][0] == slug
    if lab.metric == Lab.Metric.ROUTER:
        router = runs["reference"].grade.metrics["router"]
        assert 0 <= router["harmonic_mean"] <= 1 and router["out_of_scope_support"] > 0
    if lab.max_trainable_share is not None:
        assert runs["reference"].run_info["trainable_share"] <= lab.max_trainable_share
    if lab.checkpoint_rules is not None:
        # The grader measured the reference's saved weights under the lab's own rules.
        check = runs["reference"].grade.weight_check
        assert 0 < check["share"] <= (lab.max_trainable_share or 1)
        assert {t["kind"] for t in check["tensors"]} == {"free", "low_rank"}
    for ablation in lab.ablations:  # each ran; the real model decides whether they pass
        run = Submission.objects.get(lab=lab, ablation=ablation["name"])
        assert run.status in Submission.FINAL, run.status


def test_the_peft_labs_full_fine_tune_is_refused_by_the_grader_whatever_its_process_claims(
    reduced_labs,
):
    lab = reduced_labs["lab-peft"]
    validate_labs([lab], log=lambda line: None)

    full = Submission.objects.get(lab=lab, ablation="full-fine-tune")
    assert full.run_info["trainable_share"] < 1e-6  # what its own process reported
    assert full.status == Submission.Status.REJECTED
    assert "changed, but this lab allows changes only to classifier.*" in full.error_message

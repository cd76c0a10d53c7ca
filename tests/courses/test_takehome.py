"""Each lab's take-home script: it runs, reproduces the lab, and its notebook opens."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from courses.authoring.parse import parse_course_folder
from labs.training.data import read_csv, stratified_split, stratified_subset
from tests.conftest import SHIPPED_COURSE

TAKEHOME = SHIPPED_COURSE / "takehome"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BUILD = _load(TAKEHOME / "build.py", "takehome_build")
LAB_SLUGS = [lab.slug for lab in BUILD.LABS]


def _lab_modules() -> dict[str, tuple[dict, Path]]:
    """Each shipped lab's `lab:` section and its stage folder."""
    course = parse_course_folder(SHIPPED_COURSE)
    return {
        module.slug: (module.lab.data, SHIPPED_COURSE / Path(module.source_path).parent)
        for module in course.modules
        if module.kind == "lab" and module.lab is not None
    }


def test_every_shipped_lab_has_a_take_home():
    assert set(LAB_SLUGS) == set(_lab_modules())


@pytest.mark.parametrize("slug", LAB_SLUGS)
def test_committed_files_are_what_the_builder_writes(slug):
    lab = next(lab for lab in BUILD.LABS if lab.slug == slug)
    for name, text in BUILD.files(lab).items():
        assert (TAKEHOME / slug / name).read_text(encoding="utf-8") == text, (slug, name)


@pytest.mark.parametrize("slug", LAB_SLUGS)
def test_script_uses_the_reference_hyperparameters_and_subset(slug):
    section, stage_dir = _lab_modules()[slug]
    script = _load(TAKEHOME / slug / "train.py", f"takehome_{slug.replace('-', '_')}")
    solution = ast.parse((stage_dir / section["solution"]).read_text(encoding="utf-8"))
    reference = next(
        ast.literal_eval(node.value)
        for node in solution.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "HYPERPARAMETERS" for t in node.targets)
    )
    # What the engine runs: the solution's values, with the lab's fixed ones on top.
    reference = {**reference, **section.get("fixed_hyperparameters", {})}
    for key, value in script.HYPERPARAMETERS.items():
        if key in reference:
            assert reference[key] == value, (slug, key)
    assert section["train_subset"] == script.TRAIN_SUBSET
    assert section["dataset"] == script.DATASET
    # The same rows the course's workers train and evaluate on: subset, then train/dev.
    rows = read_csv(SHIPPED_COURSE / "datasets" / script.DATASET / "train.csv")
    subset = stratified_subset(rows, script.TRAIN_SUBSET, 13)
    own_dev = SHIPPED_COURSE / "datasets" / script.DATASET / "dev.csv"
    # A dataset with a dev split of its own is tuned on it; otherwise 10% of the subset.
    expected = (
        (subset, read_csv(own_dev)) if own_dev.is_file() else stratified_split(subset, 0.1, 13)
    )
    assert ("dev.csv" if own_dev.is_file() else None) == script.DEV_CSV
    train, dev = script.subset_and_split([(text, label) for text, label in rows])
    assert (train, dev) == tuple([list(map(tuple, part)) for part in expected])


def test_scripts_read_only_the_public_training_split():
    for slug in LAB_SLUGS:
        text = (TAKEHOME / slug / "train.py").read_text(encoding="utf-8")
        assert "test.csv" not in text, slug
        assert '"train.csv"' in text, slug


@pytest.mark.parametrize("slug", LAB_SLUGS)
def test_script_trains_a_few_steps_and_writes_metrics(slug, tiny_model, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, str(TAKEHOME / slug / "train.py")]
    command += ["--model", tiny_model, "--max-steps", "2", "--output-dir", str(out)]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    assert 0.0 <= metrics["eval_macro_f1"] <= 1.0
    assert metrics["train_loss"] > 0
    config = json.loads((out / "model" / "config.json").read_text())
    # LoRA merged away: what is saved is a plain classifier the grader's rules would accept.
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert len(config["id2label"]) == len(metrics["labels"])


@pytest.mark.parametrize("slug", LAB_SLUGS)
def test_notebook_is_nbformat_4_and_its_code_compiles(slug):
    notebook = json.loads((TAKEHOME / slug / "train.ipynb").read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 5
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(ids) == len(set(ids))
    code = []
    for cell in notebook["cells"]:
        assert cell["cell_type"] in {"markdown", "code"}
        assert isinstance(cell["source"], list) and all(isinstance(s, str) for s in cell["source"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            source = "".join(cell["source"])
            compile(source, f"{slug} cell", "exec")
            code.append(source)
    # Run top to bottom, the cells define what the last one calls.
    joined = "\n\n".join(code)
    assert "def main(" in joined and joined.rstrip().endswith(")")
    compile(joined, f"{slug} notebook", "exec")


def test_readmes_give_the_setup_commands():
    for slug in LAB_SLUGS:
        readme = (TAKEHOME / slug / "README.md").read_text(encoding="utf-8")
        assert "pip install torch transformers datasets evaluate peft accelerate" in readme
        for flag in ("--model", "--max-steps", "--output-dir"):
            assert flag in readme, (slug, flag)

"""The learner contract: HYPERPARAMETERS checks, hook failures, learner-only tracebacks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from labs.training.contract import (
    DEFAULT_HYPERPARAMETERS,
    LearnerCodeError,
    load_learner_code,
    may_define_hook,
    preprocess_texts,
    resolve_hyperparameters,
)
from labs.training.engine import train
from labs.training.spec import RunSpec, SpecError
from tests.training.conftest import MakeSpec
from tests.training.support import hp_code


def spec_for(code_file: Path) -> RunSpec:
    return RunSpec(
        base_model="/unused",
        code_file=str(code_file),
        train_file="/unused",
        dev_file="/unused",
        labels=["a", "b"],
        output_dir="/unused",
        max_epochs=3,
    )


def write_solution(tmp_path: Path, code: str) -> Path:
    path = tmp_path / "solution.py"
    path.write_text(code, encoding="utf-8")
    return path


def learner_failure(make_spec: MakeSpec, code: str) -> LearnerCodeError:
    with pytest.raises(LearnerCodeError) as caught:
        train(make_spec(code))
    return caught.value


def test_missing_hyperparameters_means_all_defaults(tmp_path: Path) -> None:
    path = write_solution(tmp_path, "")
    hp, warnings = resolve_hyperparameters(
        load_learner_code(path).raw_hyperparameters, spec_for(path)
    )
    assert hp == DEFAULT_HYPERPARAMETERS
    assert warnings == []


def test_unknown_hyperparameter_key_is_named_with_the_allowed_keys(tmp_path: Path) -> None:
    path = write_solution(tmp_path, "HYPERPARAMETERS = {'lr': 0.1}\n")
    with pytest.raises(LearnerCodeError) as caught:
        resolve_hyperparameters(load_learner_code(path).raw_hyperparameters, spec_for(path))
    message = caught.value.message
    assert "unknown key 'lr'" in message
    assert "learning_rate" in message and "label_smoothing" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"epochs": "3"}, "HYPERPARAMETERS['epochs'] must be an integer, got '3' (str)."),
        ({"epochs": True}, "HYPERPARAMETERS['epochs'] must be an integer, got True (bool)."),
        ({"learning_rate": 0}, "HYPERPARAMETERS['learning_rate'] = 0.0 is out of range"),
        ({"learning_rate": float("nan")}, "HYPERPARAMETERS['learning_rate'] = nan is out of range"),
        ({"batch_size": 1000}, "it must be at least 1 and at most 128."),
        ({"warmup_ratio": 1.0}, "it must be at least 0 and less than 1."),
        ({"grad_clip": 0}, "HYPERPARAMETERS['grad_clip'] = 0.0 is out of range"),
        ({"grad_clip": "big"}, "must be a number or None"),
    ],
)
def test_bad_hyperparameter_values_get_one_sentence_messages(raw: dict, expected: str) -> None:
    with pytest.raises(LearnerCodeError) as caught:
        resolve_hyperparameters(raw, spec_for(Path("/unused")))
    assert expected in caught.value.message


def test_grad_clip_none_disables_clipping_and_ints_are_accepted_for_floats() -> None:
    hp, _ = resolve_hyperparameters({"grad_clip": None, "weight_decay": 0}, spec_for(Path("/x")))
    assert hp["grad_clip"] is None
    assert hp["weight_decay"] == 0.0 and isinstance(hp["weight_decay"], float)


def test_max_length_above_the_cap_is_lowered_with_a_warning() -> None:
    hp, warnings = resolve_hyperparameters({"max_length": 1024}, spec_for(Path("/x")))
    assert hp["max_length"] == 256
    assert warnings == ["HYPERPARAMETERS['max_length'] = 1024 is above this lab's cap; using 256."]


def test_a_labs_fixed_hyperparameters_win_over_the_learners_with_a_warning() -> None:
    spec = dataclasses.replace(
        spec_for(Path("/x")), fixed_hyperparameters={"learning_rate": 5e-4, "warmup_ratio": 0.1}
    )
    hp, warnings = resolve_hyperparameters({"learning_rate": 1e-5, "epochs": 2}, spec)
    assert (hp["learning_rate"], hp["warmup_ratio"], hp["epochs"]) == (5e-4, 0.1, 2)
    # Only a value the learner set and the lab overrides is worth a word.
    assert warnings == [
        "HYPERPARAMETERS['learning_rate'] = 1e-05 is fixed by this lab at 0.0005; "
        "the run uses 0.0005."
    ]


def test_a_fixed_hyperparameter_is_checked_like_the_learners() -> None:
    spec = dataclasses.replace(spec_for(Path("/x")), fixed_hyperparameters={"learning_rate": 2})
    with pytest.raises(LearnerCodeError, match="learning_rate"):
        resolve_hyperparameters({}, spec)


def test_missing_code_file_is_the_platforms_fault_not_the_learners(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"code_file .* does not exist"):
        load_learner_code(tmp_path / "solution.py")


def test_hyperparameters_that_are_not_a_dict_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LearnerCodeError, match="HYPERPARAMETERS must be a dict, got list"):
        load_learner_code(write_solution(tmp_path, "HYPERPARAMETERS = [1, 2]\n"))


def test_syntax_error_points_at_the_line_in_solution_py(tmp_path: Path) -> None:
    path = write_solution(tmp_path, "x = 1\ndef broken(:\n    pass\n")
    with pytest.raises(LearnerCodeError) as caught:
        load_learner_code(path)
    error = caught.value
    assert error.message.startswith("Importing your code raised SyntaxError")
    assert "(solution.py, line 2)" in error.message
    assert 'File "solution.py", line 2' in error.learner_traceback
    assert str(tmp_path) not in error.learner_traceback


def test_error_at_import_time_is_a_learner_error(tmp_path: Path) -> None:
    path = write_solution(tmp_path, "import sys\nsys.exit(1)\n")
    with pytest.raises(LearnerCodeError, match="Importing your code raised SystemExit"):
        load_learner_code(path)


def test_hook_with_the_wrong_signature_fails_before_training(tmp_path: Path) -> None:
    path = write_solution(tmp_path, "def build_optimizer(model):\n    pass\n")
    with pytest.raises(LearnerCodeError) as caught:
        load_learner_code(path)
    assert caught.value.message == (
        "build_optimizer must accept 2 argument(s) (model, hp), "
        "but its signature is build_optimizer(model)."
    )


def test_hook_that_raises_is_named_in_the_message(make_spec: MakeSpec) -> None:
    code = hp_code() + "def preprocess(text):\n    raise ValueError('cannot clean ' + text[:5])\n"
    error = learner_failure(make_spec, code)
    assert error.message.startswith("preprocess() raised ValueError: cannot clean ")
    assert error.message.endswith("(solution.py, line 3)")


def test_learner_traceback_shows_only_solution_py_frames(
    make_spec: MakeSpec, tmp_path: Path
) -> None:
    # The failure happens deep in the standard library, called from a helper of the hook.
    code = hp_code() + (
        "import json\n"
        "\n"
        "def parse(text):\n"
        "    return json.loads(text)\n"
        "\n"
        "def training_step(model, batch, hp):\n"
        "    return parse('{not json')\n"
    )
    error = learner_failure(make_spec, code)
    lines = error.learner_traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1:5] == [
        '  File "solution.py", line 8, in training_step',
        "    return parse('{not json')",
        '  File "solution.py", line 5, in parse',
        "    return json.loads(text)",
    ]
    assert lines[5].startswith("JSONDecodeError: Expecting property name")
    assert len(lines) == 6
    assert error.message.startswith("training_step() raised JSONDecodeError")
    for leak in ("site-packages", "/usr/lib", str(tmp_path), "engine.py"):
        assert leak not in error.learner_traceback


def test_prepare_model_that_forgets_to_return_the_model_is_explained(make_spec: MakeSpec) -> None:
    error = learner_failure(make_spec, "def prepare_model(model):\n    model.eval()\n")
    assert "prepare_model() returned None" in error.message
    assert "return model" in error.message


def test_prepare_model_that_wraps_the_model_cannot_be_exported(make_spec: MakeSpec) -> None:
    code = (
        "import torch\n"
        "class Wrapper(torch.nn.Module):\n"
        "    def __init__(self, inner):\n"
        "        super().__init__()\n"
        "        self.inner = inner\n"
        "def prepare_model(model):\n"
        "    return Wrapper(model)\n"
    )
    error = learner_failure(make_spec, code)
    assert "prepare_model() returned a Wrapper" in error.message
    assert "PreTrainedModel" in error.message


def test_training_step_returning_a_number_is_explained(make_spec: MakeSpec) -> None:
    error = learner_failure(make_spec, "def training_step(model, batch, hp):\n    return 0.5\n")
    assert error.message == "training_step() must return the loss as a torch.Tensor, got float."


def test_frozen_model_with_no_trainable_parameters_is_the_learners_error(
    make_spec: MakeSpec,
) -> None:
    code = "def prepare_model(model):\n    model.requires_grad_(False)\n    return model\n"
    error = learner_failure(make_spec, code)
    assert error.message == "prepare_model() left the model with no trainable parameters."


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("def preprocess(text):\n    return text\n", True),
        ("preprocess = str.lower\n", True),
        ("from string import capwords as preprocess\n", True),
        ("globals()['preprocess'] = str.lower\n", True),
        ("import sys\nsetattr(sys.modules[__name__], 'preprocess', str.lower)\n", True),
        ("def preprocess(:\n", True),  # unparsable: may define anything
        ("HYPERPARAMETERS = {}\n# preprocess is optional\n", False),
        ('"""No preprocess here."""\ndef prepare_model(model):\n    return model\n', False),
    ],
)
def test_may_define_hook_reads_the_code_without_running_it(code: str, expected: bool) -> None:
    assert may_define_hook(code, "preprocess") is expected


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("'x' * 10_001", "returned a text of 10,001 characters; at most 10,000 are allowed"),
        ("'\\ud800'", "not valid Unicode text"),
        ("b'bytes'", "must return a str, got bytes"),
    ],
)
def test_a_preprocess_result_the_model_cannot_read_fails_training(
    tmp_path: Path, returned: str, message: str
) -> None:
    path = write_solution(tmp_path, f"def preprocess(text):\n    return {returned}\n")
    with pytest.raises(LearnerCodeError, match=message):
        preprocess_texts(load_learner_code(path), ["a text"])

"""The engine's events: the JSON-lines vocabulary of its stdout, read by the worker.

Standard library only: the worker reads these names without importing torch.

`loading_code` is always the first event, written before the learner's file is
imported. Nothing the worker sees before it can be the learner's doing; after
it, the learner's code shares the engine's process and can write to the event
channel like the engine does, so a line there that is not one of these events
is taken as the learner's (see runs/pipeline.py, which decides who is at fault).
`--serve-preprocess` (labs/training/serving.py) prints `loading_code` only.
"""

from __future__ import annotations

LOADING_CODE = "loading_code"
# The learner's module finished importing; their hooks (preprocess, build_model) run next.
# Written after the channel is shared, so it only ever moves the run panel's wording on.
CODE_IMPORTED = "code_imported"

# The bounds of a `dev_analysis` event: what the engine sends, and what the worker keeps of
# one (runs/reporter.py), since learner code shares the channel and could write its own.
ANALYSIS_MISTAKES = 12
ANALYSIS_CONFUSIONS = 8
ANALYSIS_TEXT_CHARS = 300

EVENTS = frozenset(
    {
        LOADING_CODE,
        CODE_IMPORTED,
        "start",  # the run is set up: its sizes, device and trainable share
        "warning",  # a hyperparameter lowered to the lab's cap, a hook's note
        "step",  # one optimiser step: loss, samples/s
        "epoch",  # dev metrics after an epoch
        "early_stop",  # patience ran out
        "after_training",  # dev metrics once the learner's after_training hook changed the model
        "dev_analysis",  # the saved model's worst dev mistakes and most frequent confusions
        "stopped",  # a cancel or timeout ended the run between steps
        "done",  # the checkpoint is saved
        "learner_error",  # the learner's code failed: message and its traceback
        "spec_error",  # the platform wrote a spec or data file the engine cannot use
        "platform_error",  # the engine itself failed
    }
)

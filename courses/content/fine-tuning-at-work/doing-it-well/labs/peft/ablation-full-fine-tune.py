"""Ablation: a full fine-tune that tells the engine it is parameter-efficient.

Every weight trains, and the engine's own count of trainable parameters is patched
to report almost none, as a learner's code could: the count in the learner's
process is only an early warning. The grader checks the saved weights against the
base model, so this run must be refused, naming the first frozen tensor that moved.
"""

import labs.training.engine as engine

HYPERPARAMETERS = {
    "learning_rate": 1e-4,
    "epochs": 3,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "seed": 13,
}

engine.count_parameters = lambda model, trainable_only=False: 1 if trainable_only else 10**9


def prepare_model(model):
    model.requires_grad_(True)
    return model

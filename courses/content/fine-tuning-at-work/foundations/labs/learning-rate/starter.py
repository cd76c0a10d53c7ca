"""Lab: learning rate and warm-up — financial news sentiment.

Run this as it is and it trains, but it will not pass: the lab fixes the peak
learning rate at 5e-4, far too high for this model, and the starter applies it
at full strength from the very first step to the very last. Watch the loss
curve, then write `build_scheduler`: it is your only lever on the rate.
"""

import re

import torch

HYPERPARAMETERS = {
    # learning_rate is fixed by this lab at 5e-4: the peak your schedule multiplies
    "epochs": 2,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,  # your scheduler decides what this means
    "seed": 13,
}


def build_scheduler(optimizer, num_training_steps, hp):
    """Return a scheduler whose step() the engine calls after every optimiser step.

    `torch.optim.lr_scheduler.LambdaLR(optimizer, factor)` calls `factor(step)`
    with the step number (0, 1, 2, ...) and multiplies the fixed peak
    `hp["learning_rate"]` by what it returns. Warm up, decay, and keep the
    factor where this model can learn.
    """

    def factor(step):
        return 1.0  # constant: no warm-up, no decay

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# From your first lab: a link becomes one placeholder word instead of a dozen word pieces.
LINK = re.compile(r"https?://\S+")
SPACES = re.compile(r"\s+")


def preprocess(text):
    return SPACES.sub(" ", LINK.sub(" link ", text)).strip()

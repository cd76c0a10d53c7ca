"""Lab: parameter-efficient fine-tuning — LoRA on financial news sentiment.

Run this as it is and it trains, but it will not pass: `prepare_model`
freezes the whole network except the classifier head, so the encoder never
adapts to the task. Finish `LoRALinear` and put it on the attention's query
and value projections.
"""

import math

import torch
from torch import nn

HYPERPARAMETERS = {
    "learning_rate": 1e-3,  # adapters start at zero and are small: they take a higher rate
    "epochs": 3,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "seed": 13,
}


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: W x + (B A x) * alpha / rank."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: int = 16):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        # TODO: two trainable matrices, A (rank x in_features) and B (out_features x rank).
        # Start B at zero so the adapted layer starts out exactly equal to the base layer.

    def forward(self, x):
        # TODO: add the low-rank update to the base layer's output.
        return self.base(x)

    def merge(self):
        """Called by the engine before saving: return a plain nn.Linear with the update folded in."""
        # TODO: add (B @ A) * scale to self.base.weight (under torch.no_grad()).
        return self.base


def prepare_model(model):
    """Freeze the pretrained weights; train only adapters and the classifier head."""
    model.requires_grad_(False)
    model.classifier.requires_grad_(True)
    # TODO: for each layer in model.bert.encoder.layer, wrap layer.attention.self.query
    # and layer.attention.self.value in a LoRALinear.
    return model


_ = math, torch  # used once you fill in the TODOs

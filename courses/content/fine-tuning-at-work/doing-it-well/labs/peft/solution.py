"""Reference solution: rank-8 LoRA on the query and value projections of every layer."""

import math

import torch
from torch import nn

HYPERPARAMETERS = {
    "learning_rate": 1e-3,
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
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        # A random, B zero: the update B @ A starts at exactly zero.
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merge(self):
        with torch.no_grad():
            self.base.weight += (self.lora_b @ self.lora_a) * self.scale
        return self.base


def prepare_model(model):
    model.requires_grad_(False)
    for layer in model.bert.encoder.layer:
        attention = layer.attention.self
        attention.query = LoRALinear(attention.query)
        attention.value = LoRALinear(attention.value)
    # The pooler feeds the new head; training it costs 0.7% of the parameters.
    model.bert.pooler.requires_grad_(True)
    model.classifier.requires_grad_(True)
    return model

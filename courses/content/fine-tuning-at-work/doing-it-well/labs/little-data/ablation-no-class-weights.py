"""Ablation: the reference without class weights (both classes weigh the same in the loss)."""

import torch
import torch.nn.functional as F

HYPERPARAMETERS = {
    "learning_rate": 1e-4,
    "epochs": 8,
    "batch_size": 16,
    "max_length": 64,
    "warmup_ratio": 0.1,
    "seed": 13,
    "early_stopping_patience": 2,
    "early_stopping_metric": "dev_macro_f1",
}

# About 7 ham messages per spam one: weight spam up so both classes pull equally.
CLASS_WEIGHTS = [1.0, 1.0]  # the ablation: both classes weigh the same


def training_step(model, batch, hp):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    weights = torch.tensor(CLASS_WEIGHTS, device=logits.device)
    return F.cross_entropy(logits.float(), batch["labels"], weight=weights)

"""Reference solution: class-weighted cross-entropy, more epochs, early stopping on dev macro-F1."""

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

# 7 ham messages per spam one in training; 4x (milder than the inverse 7x) keeps precision.
CLASS_WEIGHTS = [1.0, 4.0]  # ham, spam


def training_step(model, batch, hp):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    weights = torch.tensor(CLASS_WEIGHTS, device=logits.device)
    return F.cross_entropy(logits.float(), batch["labels"], weight=weights)

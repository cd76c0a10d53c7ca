"""Reference solution: class-weighted cross-entropy, three epochs, early stopping on dev macro-F1."""

import re

import torch
import torch.nn.functional as F

HYPERPARAMETERS = {
    "learning_rate": 1e-4,
    "epochs": 3,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "seed": 13,
    "early_stopping_patience": 1,
    "early_stopping_metric": "dev_macro_f1",
}

# negative, neutral, positive: 163, 699 and 218 of the 1,080 training tweets. Balanced
# weights (n / (3 n_c)) would be 2.21, 0.52, 1.65; negative, the class the alerts are
# for, a little heavier.
CLASS_WEIGHTS = [3.0, 0.5, 1.5]

LINK = re.compile(r"https?://\S+")
SPACES = re.compile(r"\s+")


def preprocess(text: str) -> str:
    text = LINK.sub(" link ", text)
    return SPACES.sub(" ", text).strip()


def training_step(model, batch, hp):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    weights = torch.tensor(CLASS_WEIGHTS, device=logits.device)
    return F.cross_entropy(logits.float(), batch["labels"], weight=weights)

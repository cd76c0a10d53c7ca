"""Ablation: the reference solution without its preprocess (links and all reach the tokenizer)."""

HYPERPARAMETERS = {
    "learning_rate": 1e-4,
    "epochs": 2,
    "batch_size": 16,
    "max_length": 48,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "seed": 13,
}


def preprocess(text: str) -> str:
    return text

"""Reference solution: a high enough rate for a 77-way head, four epochs, queries kept whole."""

HYPERPARAMETERS = {
    "learning_rate": 3e-4,
    "epochs": 4,
    "batch_size": 16,
    # Banking77 queries: median 13 word pieces, 90% within 26, 99% within 53.
    "max_length": 64,
    "warmup_ratio": 0.1,
    "seed": 13,
}

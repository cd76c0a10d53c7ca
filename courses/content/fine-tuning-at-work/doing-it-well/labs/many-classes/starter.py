"""Lab: many classes — Banking77 customer-service intents (77 labels).

Run this as it is and it trains, but it will not pass: one short epoch at a
small learning rate cannot teach a brand-new 77-way classifier head, and 16
tokens cut many queries in half. Choose the learning rate, the number of
epochs and max_length so that the run learns every intent and still fits
the time budget.
"""

HYPERPARAMETERS = {
    "learning_rate": 5e-5,
    "epochs": 1,
    "batch_size": 32,
    "max_length": 16,
    "warmup_ratio": 0.1,
    "seed": 13,
}

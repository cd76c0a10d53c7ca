"""Lab: your first fine-tune — financial news sentiment.

Run this as it is and it trains, but it will not pass. Fix the
hyperparameters and write `preprocess`.
"""

HYPERPARAMETERS = {
    "learning_rate": 1e-6,  # far too small: the weights barely move
    "epochs": 1,
    "batch_size": 32,
    "max_length": 16,  # most tweets are longer than this
    "warmup_ratio": 0.0,
    "seed": 13,
}


def preprocess(text: str) -> str:
    """Return the text the model should train on.

    Tweets carry https://t.co/... links and $TICKER cashtags. Replace the
    link with a single placeholder word so it does not eat the sequence.
    """
    return text

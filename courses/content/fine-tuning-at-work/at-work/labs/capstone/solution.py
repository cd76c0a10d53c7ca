"""Reference solution: a rate and length fit for 151 short-query classes; out-of-scope weighted up."""

import torch
import torch.nn.functional as F

HYPERPARAMETERS = {
    "learning_rate": 4e-4,
    "epochs": 5,
    "batch_size": 32,
    "max_length": 32,  # the longest CLINC150 query is 32 word pieces
    "warmup_ratio": 0.1,
    "seed": 13,
}

# Out-of-scope is one class in 151 in training but about one query in five at the desk:
# a mistake on it costs this much more than a mistake between two intents.
OUT_OF_SCOPE_WEIGHT = 5.0


def training_step(model, batch, hp):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    weights = torch.ones(logits.shape[-1], device=logits.device)
    weights[model.config.label2id["out_of_scope"]] = OUT_OF_SCOPE_WEIGHT
    return F.cross_entropy(logits.float(), batch["labels"], weight=weights)

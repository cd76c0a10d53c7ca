"""Reference solution: a rate and length fit for 151 short-query classes, logit adjustment
that tells the loss out-of-scope is far more common at the desk than in the training data,
and an out-of-scope bias tuned on dev after training and saved with the weights."""

import math

import torch
import torch.nn.functional as F

HYPERPARAMETERS = {
    "learning_rate": 4e-4,
    "epochs": 4,
    "batch_size": 32,
    "max_length": 32,  # the longest CLINC150 query is 32 word pieces
    "warmup_ratio": 0.1,
    "seed": 13,
}

DESK_SHARE_OUT_OF_SCOPE = 0.18  # about one query in five at the desk fits no intent
TAU = 2.5  # 1 is the textbook correction; more hands off more
MIN_INTENT_RECALL = 0.3  # on dev: every intent keeps at least 3 of its 10 queries


def training_step(model, batch, hp):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    n = logits.shape[-1]
    out_of_scope = model.config.label2id["out_of_scope"]
    # Training shares: every class 1/n (a stratified sample). Desk shares: 18% out-of-scope,
    # the rest spread over the intents. Adjust each logit by tau * log(train / desk).
    desk = torch.full((n,), (1 - DESK_SHARE_OUT_OF_SCOPE) / (n - 1), device=logits.device)
    desk[out_of_scope] = DESK_SHARE_OUT_OF_SCOPE
    offset = TAU * (math.log(1 / n) - desk.log())
    return F.cross_entropy(logits.float() + offset, batch["labels"])


def after_training(model, dev):
    """Tune the out-of-scope logit's bias on dev for the router's own score, and bake it in;
    never so far that an intent loses most of its queries to the hand-off."""
    oos = dev.label_names.index("out_of_scope")
    in_scope = dev.labels != oos
    intents = [i for i in range(len(dev.label_names)) if i != oos]
    best_score, best_bias = -1.0, 0.0
    for step in range(-8, 49):  # biases -2.0 .. 12.0 in quarters
        bias = step / 4
        logits = dev.logits.clone()
        logits[:, oos] += bias
        predicted = logits.argmax(dim=-1)
        worst_intent = min(
            (predicted[dev.labels == i] == i).float().mean().item()
            for i in intents
            if (dev.labels == i).any()
        )
        if worst_intent < MIN_INTENT_RECALL:
            continue  # a router that never routes some intent is not a router
        accuracy = (predicted[in_scope] == dev.labels[in_scope]).float().mean().item()
        recall = (predicted[~in_scope] == oos).float().mean().item()
        score = 2 * accuracy * recall / (accuracy + recall) if accuracy + recall else 0.0
        if score > best_score:
            best_score, best_bias = score, bias
    model.classifier.bias[oos] += best_bias

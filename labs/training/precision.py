"""Which number format a run computes in: the one rule for training and grading.

bf16 is used only where the hardware computes it natively — a CUDA GPU, or a CPU with
AMX tiles or AVX-512 BF16 — because elsewhere torch emulates it, slower than fp32.
The worker resolves the setting (`auto`) with `resolve_precision` before the run and
records the result on the row; the engine and the grader are told the concrete value.
"""

from __future__ import annotations

PRECISIONS = ("auto", "fp32", "bf16")
RESOLVED = ("fp32", "bf16")


def native_bf16(device_type: str) -> bool:
    """Whether `device_type` ("cpu" or "cuda") has bf16 units of its own."""
    if device_type.startswith("cuda"):
        return True
    import torch

    return any(
        getattr(torch.cpu, name, lambda: False)()
        for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    )


def resolve_precision(requested: str, device_type: str) -> str:
    """`requested` ("auto", "fp32" or "bf16") as the format to use on `device_type`."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested != "auto":
        return requested
    return "bf16" if native_bf16(device_type) else "fp32"


def default_device_type() -> str:
    """The device an engine run with device "auto" trains on, as this machine sees it."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

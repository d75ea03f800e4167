"""Where and in which precision the torch code runs: one resolution for embeddings and
imprinting."""

from __future__ import annotations

#: ``embedding.device`` and ``imprinting.device``; ``auto`` is CUDA when present.
DEVICES = ("auto", "cpu", "cuda")
#: ``imprinting.dtype``: the precision of scoring.
DTYPES = ("float32", "float64")


def resolve_device(requested: str = "auto"):
    """``"auto"``: CUDA when available, else the CPU; ``"cuda"`` without CUDA is an error."""
    import torch

    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r}; expected one of {DEVICES}")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but no CUDA device is available")
    return torch.device(requested)


def resolve_dtype(name: str):
    """The torch dtype of one of :data:`DTYPES`."""
    import torch

    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected one of {DTYPES}")
    return getattr(torch, name)

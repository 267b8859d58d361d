"""Device choice and mixed precision, shared by training and inference."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from agrivision.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda`` as a torch device.

    Raises
    ------
    ConfigError
        Unknown name, or ``cuda`` without a usable GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}", fix="use auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA is not available here", fix="use --device cpu")
    return torch.device(name)


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on a GPU (no loss scaling needed, unlike fp16); fp32 on the CPU."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield

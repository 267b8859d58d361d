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


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether PyTorch runs in bf16: ``auto`` means on a GPU only (on a CPU, PyTorch is the
    fp32 reference; :func:`agrivision.segment.engine.engine_bf16` picks bf16 for OpenVINO on
    CPUs with native bf16).

    Raises
    ------
    ConfigError
        Unknown precision.
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"unknown precision {precision!r}", fix="use auto, fp32 or bf16")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


@contextlib.contextmanager
def autocast(device: torch.device, bf16: bool | None = None) -> Iterator[None]:
    """bf16 autocast (no loss scaling needed, unlike fp16) when ``bf16`` is true, by default
    on a GPU only; otherwise fp32."""
    if bf16 is None:
        bf16 = device.type == "cuda"
    if bf16:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield

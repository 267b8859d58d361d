"""Weight files: safetensors only, read without unpickling."""

from __future__ import annotations

import os

import torch

from agrivision.errors import CheckpointError


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read tensors from a safetensors file (the only weights format accepted).

    Raises
    ------
    CheckpointError
        The file is missing, not safetensors (e.g. a pickle), or truncated.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError as exc:
        raise CheckpointError("weights file not found", source=path) from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"not a valid safetensors file ({exc})",
            source=path,
            fix="weights must be safetensors; pickled .pt/.pth files are never loaded",
        ) from exc

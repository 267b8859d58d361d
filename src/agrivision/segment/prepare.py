"""Input preparation shared by training and inference, so that both see identical tensors:
NaN-aware block averaging to the model's resolution, per-band normalisation, nodata filling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from agrivision.segment.nodata import NODATA


def pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average ``(C, H, W)`` reflectance over ``factor x factor`` blocks, ignoring NaN.

    Partial blocks at the bottom/right edge average the pixels they have, so that the result
    of a window depends only on the pixels inside it. A block without any valid pixel is NaN.
    """
    if factor == 1:
        return x
    c, h, w = x.shape
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), value=float("nan"))
    blocks = x.reshape(c, (h + ph) // factor, factor, (w + pw) // factor, factor)
    valid = torch.isfinite(blocks)
    total = torch.where(valid, blocks, 0).sum(dim=(2, 4))
    count = valid.sum(dim=(2, 4))
    return torch.where(count > 0, total / count.clamp(min=1), float("nan"))


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Standardise ``(..., C, H, W)`` bands with per-band ``mean``/``std``; NaN becomes 0.

    0 is the training mean, the most neutral value for nodata (its pixels are masked later).
    """
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    return torch.nan_to_num((x - m) / s, nan=0.0, posinf=0.0, neginf=0.0)


def pool_labels(label: np.ndarray, factor: int, n_classes: int) -> np.ndarray:
    """Majority class of each ``factor x factor`` block of a ``(H, W)`` uint8 label raster.

    Ignored pixels (255) do not vote; a block of ignored pixels stays 255; ties go to the
    lower class code.
    """
    if factor == 1:
        return label
    h, w = label.shape
    padded = np.full((-(-h // factor) * factor, -(-w // factor) * factor), NODATA, np.uint8)
    padded[:h, :w] = label
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    votes = np.stack([(blocks == k).sum(axis=(1, 3)) for k in range(n_classes)])
    out = votes.argmax(axis=0).astype(np.uint8)
    out[votes.sum(axis=0) == 0] = NODATA
    return out

"""Augmentation of training chips: flips, 90-degree rotations, brightness/contrast jitter."""

from __future__ import annotations

import torch

from agrivision.segment.config import AugmentConfig


def augment(
    x: torch.Tensor, y: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly flip, rotate by 90 degrees and jitter brightness/contrast a batch of chips.

    ``x`` is ``(N, C, S, S)`` normalised input, ``y`` is ``(N, S, S)`` labels; geometry is
    applied to both, jitter (shared by all bands, in standard deviations) to ``x`` only.
    """
    n = x.shape[0]
    draws = torch.rand((n, 5), generator=generator)
    xs, ys = [], []
    for i in range(n):
        xi, yi = x[i], y[i]
        if cfg.flips and draws[i, 0] < 0.5:
            xi, yi = xi.flip(-1), yi.flip(-1)
        if cfg.flips and draws[i, 1] < 0.5:
            xi, yi = xi.flip(-2), yi.flip(-2)
        if cfg.rotate90:
            k = int(draws[i, 2] * 4) % 4
            xi, yi = torch.rot90(xi, k, (-2, -1)), torch.rot90(yi, k, (-2, -1))
        gain = 1 + cfg.contrast * (2 * draws[i, 3] - 1)
        shift = cfg.brightness * (2 * draws[i, 4] - 1)
        xs.append(xi * gain + shift)
        ys.append(yi)
    return torch.stack(xs), torch.stack(ys)

"""Deterministic spatial train/validation split of labelled images, by blocks.

The split is by blocks, not by chips: neighbouring pixels are strongly correlated, so a random
chip split would leak the validation set into training. Validation blocks are drawn with a
seeded generator over all blocks of all images; training chips lie wholly inside the training
part, ``buffer`` pixels away from any validation block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]  # row0, row1, col0, col1


@dataclass
class Split:
    """Per image: pixels that training chips may use, and the validation blocks."""

    train: list[np.ndarray]  # (H, W) bool
    val: list[list[Box]]


def block_split(
    shapes: list[tuple[int, int]], *, block: int, val_fraction: float, buffer: int, seed: int
) -> Split:
    """Assign ``round(val_fraction * n_blocks)`` blocks of a regular grid to validation.

    Parameters
    ----------
    shapes
        ``(H, W)`` of each image, in model pixels.
    block
        Block edge in model pixels (blocks at the bottom/right edge may be smaller).
    val_fraction
        Share of all blocks (over all images) used for validation.
    buffer
        Training pixels closer than this to a validation block are not used.
    seed
        The same seed and shapes always give the same split.
    """
    val: list[list[Box]] = [[] for _ in shapes]
    train = [np.ones(s, bool) for s in shapes]
    for i, r, c in validation_blocks(shapes, block=block, val_fraction=val_fraction, seed=seed):
        h, w = shapes[i]
        box = (r, min(r + block, h), c, min(c + block, w))
        val[i].append(box)
        train[i][max(0, r - buffer) : box[1] + buffer, max(0, c - buffer) : box[3] + buffer] = False
    return Split(train, val)


def validation_blocks(
    shapes: list[tuple[int, int]], *, block: int, val_fraction: float, seed: int
) -> list[tuple[int, int, int]]:
    """``(image, row, col)`` of the top-left pixel of each validation block, sorted.

    The blocks of a regular ``block``-pixel grid over all images are numbered image by image,
    row by row; a generator seeded with ``seed`` permutes them and the first
    ``round(val_fraction * n_blocks)`` are validation blocks.
    """
    blocks = [
        (i, r, c)
        for i, (h, w) in enumerate(shapes)
        for r in range(0, h, block)
        for c in range(0, w, block)
    ]
    n_val = round(val_fraction * len(blocks))
    chosen = np.random.default_rng(seed).permutation(len(blocks))[:n_val]
    return [blocks[k] for k in sorted(chosen)]

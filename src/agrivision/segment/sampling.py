"""Where training chips are drawn: random (optionally class-balanced) or a regular grid,
inside the training part of a :mod:`~agrivision.segment.split`."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def corners(allowed: np.ndarray, size: int) -> np.ndarray:
    """Top-left ``(row, col)`` of every ``size x size`` window lying wholly inside ``allowed``."""
    h, w = allowed.shape
    if h < size or w < size:
        return np.empty((0, 2), np.int64)
    # A window is inside iff its minimum is True: a separable minimum filter, anchored top-left.
    inside = ndimage.minimum_filter(allowed, size=size, origin=-(size // 2), mode="constant")
    return np.argwhere(inside[: h - size + 1, : w - size + 1].astype(bool))


class ChipSampler:
    """Chooses training windows: random (optionally class-balanced) or a regular grid.

    Parameters
    ----------
    labels
        ``(H, W)`` labels per image (255 = ignored).
    allowed
        ``(H, W)`` bool per image: where training chips may lie.
    size
        Chip edge in pixels.
    n_classes
        Number of classes (for balancing).
    seed
        Base seed; epoch ``e`` draws from ``(seed, e)``.
    """

    def __init__(
        self,
        labels: list[np.ndarray],
        allowed: list[np.ndarray],
        size: int,
        n_classes: int,
        seed: int,
    ) -> None:
        self.size = size
        self.seed = seed
        self.corners = [corners(a, size) for a in allowed]
        self.valid: list[np.ndarray] = [np.zeros(a.shape, bool) for a in allowed]
        for i, c in enumerate(self.corners):
            self.valid[i][c[:, 0], c[:, 1]] = True
        if not any(len(c) for c in self.corners):
            raise ValueError(f"no {size}-pixel chip fits into the training part of any image")
        # Pixels that some valid chip contains: a window [p - size + 1, p] holds a valid corner.
        self.reach = [
            ndimage.maximum_filter(v, size=size, origin=(size - 1) // 2, mode="constant")
            for v in self.valid
        ]
        # Pixels of each class that some chip can contain, for class-balanced draws.
        self.by_class: list[list[np.ndarray]] = []
        for k in range(n_classes):
            per_image = []
            for lab, reach in zip(labels, self.reach, strict=True):
                per_image.append(np.flatnonzero((lab == k) & reach))
            self.by_class.append(per_image)
        self.shapes = [lab.shape for lab in labels]

    def grid(self) -> list[tuple[int, int, int]]:
        """``(image, row, col)`` of non-overlapping chips on a regular grid (valid ones only)."""
        out = []
        for i, valid in enumerate(self.valid):
            h, w = valid.shape
            out += [
                (i, r, c)
                for r in range(0, h - self.size + 1, self.size)
                for c in range(0, w - self.size + 1, self.size)
                if valid[r, c]
            ]
        return out

    def random(self, epoch: int, n: int, *, balance: bool) -> list[tuple[int, int, int]]:
        """``n`` random chips for ``epoch`` (the same for the same seed and epoch).

        With ``balance`` each chip is centred near a pixel of a class drawn uniformly from the
        classes present, so that rare classes (weeds) are seen as often as common ones.
        """
        rng = np.random.default_rng([self.seed, epoch])
        counts = np.array([len(c) for c in self.corners], float)
        present = [k for k, imgs in enumerate(self.by_class) if sum(map(len, imgs)) > 0]
        out = []
        for _ in range(n):
            if balance and present:
                chip = self._near_class(rng, present[rng.integers(len(present))])
                if chip is not None:
                    out.append(chip)
                    continue
            i = int(rng.choice(len(counts), p=counts / counts.sum()))
            r, c = self.corners[i][rng.integers(len(self.corners[i]))]
            out.append((i, int(r), int(c)))
        return out

    def _near_class(self, rng: np.random.Generator, k: int) -> tuple[int, int, int] | None:
        sizes = np.array([len(p) for p in self.by_class[k]], float)
        i = int(rng.choice(len(sizes), p=sizes / sizes.sum()))
        pixel = self.by_class[k][i][rng.integers(len(self.by_class[k][i]))]
        row, col = divmod(int(pixel), self.shapes[i][1])
        for _ in range(8):  # a random offset of the pixel inside the chip that keeps it valid
            r = row - int(rng.integers(self.size))
            c = col - int(rng.integers(self.size))
            if (
                0 <= r < self.valid[i].shape[0]
                and 0 <= c < self.valid[i].shape[1]
                and self.valid[i][r, c]
            ):
                return i, r, c
        return None

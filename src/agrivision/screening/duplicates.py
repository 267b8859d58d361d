"""Duplicate acquisitions: same footprint and date, or near-identical content.

Content is compared with a difference hash (dHash): the grey overview is area-averaged to
``size x (size + 1)`` pixels and each bit says whether a pixel is brighter than its right
neighbour. It ignores brightness/contrast changes, re-encoding (other dtype, compression,
scale) and small noise; distinct textures differ in about half of the bits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from PIL import Image
from rasterio.crs import CRS
from rasterio.warp import transform_bounds


def dhash(grey: np.ndarray, size: int = 16) -> np.ndarray:
    """Difference hash of a grey image: ``size * size`` booleans (NaN -> image median).

    Parameters
    ----------
    grey
        2-D image (any range); at least ``size + 1`` pixels wide and ``size`` high for a
        meaningful hash (smaller images are upsampled).
    size
        Hash edge; ``size**2`` bits.
    """
    img = np.asarray(grey, dtype=np.float32)
    finite = np.isfinite(img)
    img = np.where(finite, img, np.median(img[finite]) if finite.any() else 0.0)
    # PIL's BOX filter averages each output pixel's exact input area (fractional edges).
    small = np.asarray(
        Image.fromarray(img.astype(np.float32), mode="F").resize(
            (size + 1, size), Image.Resampling.BOX
        )
    )
    return (small[:, 1:] > small[:, :-1]).ravel()


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    """Number of differing bits between two hashes of one size."""
    return int(np.count_nonzero(a != b))


def footprint_iou(
    a: tuple[float, float, float, float],
    crs_a: CRS,
    b: tuple[float, float, float, float],
    crs_b: CRS,
) -> float:
    """Intersection over union of two bounding boxes (``b`` reprojected to ``crs_a``)."""
    if crs_a != crs_b:
        b = transform_bounds(crs_b, crs_a, *b)
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def find_duplicates(
    footprints: Sequence[tuple[tuple[float, float, float, float], CRS] | None],
    dates: Sequence[dt.datetime | None],
    hashes: Sequence[np.ndarray | None],
    rank: Sequence[float],
    kinds: Sequence[object] | None = None,
    *,
    footprint_iou_min: float = 0.95,
    hash_max_distance: int = 20,
    max_days_apart: int | None = 0,
    content_min_iou: float = 0.5,
) -> list[tuple[int, str] | None]:
    """Group duplicate scenes; every scene but the best of its group points to that one.

    Parameters
    ----------
    footprints
        ``(bounds, crs)`` per scene, None when not georeferenced.
    dates
        Acquisition time per scene (None: unknown).
    hashes
        dHash per scene (None: no usable content, e.g. a quality band only).
    rank
        Higher is better (e.g. valid fraction); ties keep the first in input order.
    kinds
        Product kind per scene (e.g. its band layout): same footprint and date make a
        duplicate only within one kind, so a cloud mask and the image of the same
        acquisition are not copies of each other. None: one kind.
    footprint_iou_min, hash_max_distance, max_days_apart, content_min_iou
        See :class:`agrivision.screening.config.DuplicatesConfig`.

    Returns
    -------
    list
        Per scene: None (kept as original) or ``(index of the scene it duplicates, reason)``.
    """
    n = len(footprints)
    parent = list(range(n))
    reason: dict[int, str] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int, why: str) -> None:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[rj] = ri
        reason.setdefault(j, why)
        reason.setdefault(i, why)

    for i in range(n):
        for j in range(i + 1, n):
            fi, fj = footprints[i], footprints[j]
            iou = footprint_iou(*fi, *fj) if fi is not None and fj is not None else None
            di, dj = dates[i], dates[j]
            same_day = di is not None and dj is not None and di.date() == dj.date()
            same_kind = kinds is None or kinds[i] == kinds[j]
            if iou is not None and iou > footprint_iou_min and same_day and same_kind:
                join(i, j, f"same footprint (IoU {iou:.3f}) and date")
                continue
            hi, hj = hashes[i], hashes[j]
            if hi is None or hj is None:
                continue
            if iou is not None and iou < content_min_iou:
                continue
            if max_days_apart is not None and di is not None and dj is not None:
                if abs((di.date() - dj.date()).days) > max_days_apart:
                    continue
            dist = hamming(hi, hj)
            if dist <= hash_max_distance:
                join(i, j, f"near-identical content (dHash distance {dist})")
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    out: list[tuple[int, str] | None] = [None] * n
    for members in groups.values():
        if len(members) < 2:
            continue
        best = max(members, key=lambda i: (rank[i], -i))
        for i in members:
            if i != best:
                out[i] = (best, reason[i])
    return out

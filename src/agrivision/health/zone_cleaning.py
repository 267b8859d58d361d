"""One field's zone raster made contiguous: majority filter, gaps filled, small patches merged.

The order follows the zone clean-up agronomists use on a classified index or yield map
(majority filter, then a sieve with a minimum zone area): a few passes of a small majority
filter take the pixel noise out, then every patch below the minimum zone area is merged into
the neighbouring patch it shares the **longest border** with (ties: the larger one). GDAL's
sieve (:func:`rasterio.features.sieve`) merges into the *largest* neighbour instead, and is
slower on a field's small window (two in-memory datasets per call), which matters with
thousands of fields zoned up to five times each.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy import ndimage

#: Majority-filter passes: the second pass removes most of what the first one leaves.
MAJORITY_PASSES = 2


class GapFill:
    """Which pixels of a field's window take the nearest zone, and from which pixel.

    The edge pixels (touched, centre outside) and the gaps inside the field (masked pixels)
    smaller than ``min_pixels`` do. Where the zones are does not matter, only which pixels
    have one (the valid pixels; the majority filter never changes that), so one plan serves
    every number of zones tried for a field.
    """

    def __init__(
        self, valid: np.ndarray, inside: np.ndarray, touched: np.ndarray, min_pixels: int
    ) -> None:
        gaps = inside & ~valid
        labels, _ = ndimage.label(gaps)
        small = gaps & (np.bincount(labels.ravel())[labels] < min_pixels)
        self.fill = (touched & ~inside & ~valid) | small
        self.nearest = None
        if valid.any() and self.fill.any():
            self.nearest = ndimage.distance_transform_edt(
                ~valid, return_distances=False, return_indices=True
            )

    def __call__(self, zone: np.ndarray) -> np.ndarray:
        """``zone`` with the planned pixels set to the zone of their nearest valid pixel."""
        if self.nearest is None:
            return zone
        rows, cols = self.nearest
        return np.where(self.fill, zone[rows, cols], zone).astype(zone.dtype)


def clean_zones(zone: np.ndarray, fill: GapFill, *, smooth: int, min_pixels: int) -> np.ndarray:
    """Contiguous zones of one field's window.

    Parameters
    ----------
    zone
        ``uint8`` window: the class (1..n) of every valid pixel of the field, 0 elsewhere.
    fill
        The edge pixels and small gaps to fill (:class:`GapFill` of the same window).
    smooth
        Majority-filter window in pixels (0 or 1: none), applied :data:`MAJORITY_PASSES`
        times; only the field's zoned pixels vote and a tie keeps the pixel's zone.
    min_pixels
        Minimum zone area in pixels: smaller patches are merged into a neighbour.

    Returns
    -------
    numpy.ndarray
        ``uint8`` window: every touched pixel has a zone, except gaps of at least
        ``min_pixels`` (clouds), which stay 0; every patch has ``min_pixels`` pixels or
        more unless it has no neighbouring zone at all.
    """
    if smooth > 1:
        for _ in range(MAJORITY_PASSES):
            zone = majority(zone, smooth)
    return sieve(fill(zone), min_pixels)


def sieve(zone: np.ndarray, min_pixels: int) -> np.ndarray:
    """Merge 4-connected patches below ``min_pixels`` into the neighbour of longest border.

    Zone 0 is no patch and no neighbour: a small patch surrounded by it stays. Patches merge
    in rounds, each small patch into the neighbour it shares the most pixel edges with (ties:
    the larger), until no small patch has a neighbour.

    Parameters
    ----------
    zone
        Integer window of zones, 0 = none.
    min_pixels
        Minimum patch size in pixels.

    Returns
    -------
    numpy.ndarray
        The window with the merged zones (same dtype).
    """
    labels, zone_of = _patches(zone)
    count = len(zone_of)
    while count > 2:
        sizes = np.bincount(labels.ravel(), minlength=count)
        a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
        b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
        edge = (a != b) & (a > 0) & (b > 0)
        keys, length = np.unique(
            np.concatenate([a[edge] * count + b[edge], b[edge] * count + a[edge]]),
            return_counts=True,
        )
        src, dst = keys // count, keys % count
        small = sizes[src] < min_pixels
        if not small.any():
            break
        src, dst, length = src[small], dst[small], length[small]
        order = np.lexsort((sizes[dst], length, src))  # the last of each source is its best
        src, dst = src[order], dst[order]
        best = np.r_[src[1:] != src[:-1], True]
        src, dst = src[best], dst[best]
        # A small patch merges now when its neighbour ranks above it by (size, label): the
        # merges then form chains, never cycles, and the smallest patch always goes.
        go = (sizes[dst] > sizes[src]) | ((sizes[dst] == sizes[src]) & (dst > src))
        mapping = np.arange(count)
        mapping[src[go]] = dst[go]
        while True:  # follow chains to their end (pointer jumping)
            jumped = mapping[mapping]
            if np.array_equal(jumped, mapping):
                break
            mapping = jumped
        labels = mapping[labels]
    return zone_of[labels].astype(zone.dtype)


def _patches(zone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected patches of equal zone: label image (0 = none) and the zone of each label."""
    labels = np.zeros(zone.shape, np.int64)
    zone_of = [0]
    for k in np.unique(zone[zone > 0]):
        lab, n = ndimage.label(zone == k)
        labels[lab > 0] = lab[lab > 0] + len(zone_of) - 1
        zone_of += [int(k)] * n
    return labels, np.array(zone_of, dtype=np.int64)


def majority(zone: np.ndarray, size: int) -> np.ndarray:
    """Majority zone among the zoned pixels of a ``size x size`` window around each zoned pixel.

    Window offsets run from ``-(size // 2)`` to ``size - size // 2 - 1``; pixels with zone 0
    neither vote nor change, and a tie keeps the pixel's own zone.
    """
    n = int(zone.max())
    if n == 0:
        return zone
    ks = np.arange(1, n + 1, dtype=zone.dtype)
    counts = np.stack([_box_count(zone == k, size) for k in ks])
    score = 2 * counts + (ks[:, None, None] == zone)  # ties keep own zone
    best = (score.argmax(axis=0) + 1).astype(zone.dtype)
    return np.where(zone > 0, best, 0).astype(zone.dtype)


def _box_count(mask: np.ndarray, size: int) -> np.ndarray:
    """True pixels in each size x size window (zero outside the array)."""
    ones = np.ones(size, np.int32)
    rows = ndimage.correlate1d(mask.astype(np.int32), ones, axis=0, mode="constant")
    return ndimage.correlate1d(rows, ones, axis=1, mode="constant")


def merge_small_parts(
    parts: np.ndarray, zones: np.ndarray, min_area: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge polygons below ``min_area`` into the neighbour they share the longest border with.

    Clipping pixel patches to a field's border can cut a patch into pieces (a narrow neck,
    a concave border); each piece smaller than the minimum zone area joins the neighbouring
    polygon of the field it shares the longest border with, smallest first. A piece without
    a neighbour (an island part of a multi-part field) stays.

    Parameters
    ----------
    parts
        Polygons of one field (CRS units), not overlapping.
    zones
        Zone of each polygon.
    min_area
        Minimum area, in CRS units squared.

    Returns
    -------
    tuple of numpy.ndarray
        The polygons and their zones.
    """
    polys, codes = list(parts), list(zones)
    while len(polys) > 1:
        areas = shapely.area(np.array(polys))
        small = [i for i in np.argsort(areas) if areas[i] < min_area]
        merged = False
        for i in small:
            shared = shapely.length(
                shapely.intersection(shapely.boundary(polys[i]), shapely.boundary(np.array(polys)))
            )
            shared[i] = 0.0
            j = int(shared.argmax())
            if shared[j] <= 0:
                continue
            polys[j] = shapely.union(polys[j], polys[i])
            del polys[i], codes[i]
            merged = True
            break
        if not merged:
            break
    return np.array(polys, dtype=object), np.array(codes, dtype=np.int64)

"""Zone rasters made contiguous, many fields at once: majority filter, gaps filled, small patches merged.

The order follows the zone clean-up agronomists use on a classified index or yield map
(majority filter, then a sieve with a minimum zone area): a few passes of a small majority
filter take the pixel noise out, then every patch below the minimum zone area is merged into
the neighbouring patch it shares the **longest border** with (ties: the larger one). GDAL's
sieve (:func:`rasterio.features.sieve`) merges into the *largest* neighbour instead and knows
nothing of fields. Every step works on a band of many fields, with an ``owner`` raster (the
field of each pixel, 0 = none) keeping each field to itself: a field's zones do not depend on
its neighbours or on where the band starts.
"""

from __future__ import annotations

import numpy as np
import shapely

from agrivision.health.zone_kernels import label_equal, majority_passes, patch_table

#: Majority-filter passes: the second pass removes most of what the first one leaves.
MAJORITY_PASSES = 2


def majority(zone: np.ndarray, owner: np.ndarray, size: int) -> np.ndarray:
    """:data:`MAJORITY_PASSES` passes of a ``size x size`` majority filter within each field.

    Parameters
    ----------
    zone
        ``uint8`` zones, 0 = none: such pixels neither vote nor change.
    owner
        Integer field of each pixel: only pixels of the pixel's own field vote.
    size
        Window edge in pixels (0 or 1: no filter); offsets ``-(size // 2)`` to
        ``size - size // 2 - 1``; a tie keeps the pixel's own zone.

    Returns
    -------
    numpy.ndarray
        The filtered ``uint8`` zones.
    """
    if size <= 1 or not zone.any():
        return zone
    return majority_passes(zone, owner, size, MAJORITY_PASSES)


def fill_plan(
    owner: np.ndarray, inside: np.ndarray, valid: np.ndarray, min_pixels: np.ndarray
) -> np.ndarray:
    """The pixels that take the zone of the nearest zoned pixel of their field.

    The edge pixels (touched by the field, centre outside) and the gaps inside a field
    (masked pixels: clouds, nodata) smaller than its minimum zone area; larger gaps stay
    unzoned. Where the zones are does not matter, only which pixels have one, so one plan
    serves every number of zones tried (fill it with
    :func:`~agrivision.health.zone_kernels.fill_nearest`).

    Parameters
    ----------
    owner
        Integer field of each pixel that the field touches (0 = none).
    inside
        Pixels whose centre lies in their field.
    valid
        Pixels with a value (they get a zone from the classes).
    min_pixels
        Minimum zone area in pixels of each field, indexed by ``owner``.

    Returns
    -------
    numpy.ndarray
        Boolean mask of the pixels to fill.
    """
    gaps = inside & ~valid
    edge = (owner > 0) & ~inside
    if not gaps.any():
        return edge
    labels, count = label_equal(gaps.view(np.uint8), owner)
    size = np.bincount(labels.ravel(), minlength=count + 1)
    field = np.zeros(count + 1, np.int64)
    field[labels.ravel()] = owner.ravel()
    return edge | ((size < min_pixels[field])[labels] & (labels > 0))


def sieve(zone: np.ndarray, owner: np.ndarray, min_pixels: np.ndarray) -> np.ndarray:
    """Merge 4-connected patches below their field's minimum into the neighbour of longest border.

    Zone 0 is no patch and no neighbour, and patches of other fields are no neighbours: a
    small patch without a neighbour stays. Patches merge in rounds, each small patch into
    the neighbour it shares the most pixel edges with (ties: the larger), until no small
    patch has a neighbour.

    Parameters
    ----------
    zone
        ``uint8`` zones, 0 = none.
    owner
        Integer field of each pixel (0 = none).
    min_pixels
        Minimum patch size in pixels of each field, indexed by ``owner``.

    Returns
    -------
    numpy.ndarray
        The zones after the merges (``uint8``).
    """
    labels, count = label_equal(zone, owner)
    count += 1
    sizes, zone_of, field_of, a, b = patch_table(labels, zone, owner, count)
    limit = min_pixels[field_of]
    # Only small patches move and patches only grow: a border between two patches that are
    # not small now never decides a merge.
    small_now = sizes < limit
    near = small_now[a] | small_now[b]
    if not near.any():  # no small patch with a neighbour: nothing merges
        return zone
    keys, length = np.unique(a[near] * count + b[near], return_counts=True)  # a < b: once
    src, dst = np.r_[keys // count, keys % count], np.r_[keys % count, keys // count]
    length = np.r_[length, length]
    mapping = np.arange(count)
    while True:
        small = sizes[src] < limit[src]
        if not small.any():
            break
        s, d = src[small], dst[small]
        order = np.lexsort((sizes[d], length[small], s))  # the last of each source is its best
        s, d = s[order], d[order]
        best = np.r_[s[1:] != s[:-1], True]
        s, d = s[best], d[best]
        # A small patch merges now when its neighbour ranks above it by (size, label): the
        # merges then form chains, never cycles, and the smallest patch always goes.
        go = (sizes[d] > sizes[s]) | ((sizes[d] == sizes[s]) & (d > s))
        step = np.arange(count)
        step[s[go]] = d[go]
        while True:  # follow chains to their end (pointer jumping)
            jumped = step[step]
            if np.array_equal(jumped, step):
                break
            step = jumped
        mapping = step[mapping]
        sizes = np.bincount(step, weights=sizes, minlength=count).astype(np.int64)
        src, dst = step[src], step[dst]
        keep = src != dst
        keys, inverse = np.unique(src[keep] * count + dst[keep], return_inverse=True)
        length = np.bincount(inverse, weights=length[keep]).astype(np.int64)
        src, dst = keys // count, keys % count
    return zone_of[mapping][labels]


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

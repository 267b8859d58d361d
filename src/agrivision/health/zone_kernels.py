"""Pixel kernels of zone cleaning over a band of many fields (numba).

Each kernel sees a ``zone`` raster (0 = none) and an ``owner`` raster (the field of each
pixel, 0 = none) and never lets one field's pixels act on another's, so a field's result is
the same whatever else lies in the band. Hand-written because the neighbourhoods are
restricted to the pixel's own field, which no box filter or ``scipy.ndimage.label`` offers,
and because they run over every pixel of a tile.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def majority_passes(zone: np.ndarray, owner: np.ndarray, size: int, passes: int) -> np.ndarray:
    """``passes`` passes of a majority filter: the most frequent zone of the pixel's own field
    in its window.

    Parameters
    ----------
    zone
        ``uint8`` zones, 0 = none (neither votes nor changes).
    owner
        Non-negative integer field of each pixel: only pixels of the same field vote.
    size
        Window edge in pixels; offsets ``-(size // 2) .. size - size // 2 - 1``.
    passes
        Number of passes, each on the result of the one before.

    Returns
    -------
    numpy.ndarray
        The filtered zones; a tie keeps the pixel's own zone, else the lowest tied zone.
    """
    lo, hi = size // 2, size - size // 2
    pad = ((lo, hi - 1), (lo, hi - 1))  # owner 0 around: no votes from outside
    n_max = int(zone.max())  # no pass makes a higher zone
    h, w = zone.shape
    key = _keys(zone, owner) if size == 3 else None
    if key is not None:
        for _ in range(passes):
            key = _majority3(key, n_max)
        return _zones_of(key)
    z, o = np.pad(zone, pad), np.pad(owner, pad)
    for _ in range(passes):
        z = _majority(z, o, size, n_max)
    return z[lo : lo + h, lo : lo + w]


@njit(cache=True, nogil=True)
def _keys(zone: np.ndarray, owner: np.ndarray) -> np.ndarray | None:
    """``owner * 256 + zone`` (``int32``) padded by one pixel of 0, or None where an owner
    does not fit (negative or from 2**23)."""
    h, w = zone.shape
    key = np.zeros((h + 2, w + 2), np.int32)
    for r in range(h):
        for c in range(w):
            f = owner[r, c]
            if f < 0 or f >= 2**23:
                return None
            key[r + 1, c + 1] = f * 256 + zone[r, c]
    return key


@njit(cache=True, nogil=True)
def _zones_of(key: np.ndarray) -> np.ndarray:
    """The ``uint8`` zones of padded keys (:func:`_keys`)."""
    h, w = key.shape
    zone = np.empty((h - 2, w - 2), np.uint8)
    for r in range(h - 2):
        for c in range(w - 2):
            zone[r, c] = key[r + 1, c + 1] & 255
    return zone


@njit(cache=True, nogil=True)
def _majority3(key: np.ndarray, n_max: int) -> np.ndarray:
    """One pass of :func:`majority_passes` with a 3 x 3 window over ``owner * 256 + zone``
    padded by one pixel (the default window; constant bounds let the compiler unroll it)."""
    h, w = key.shape
    out = key.copy()
    counts = np.zeros(n_max + 1, np.int32)
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            me = key[r, c]
            own = me & 255
            if own == 0:
                continue
            # the four nearest alike: a majority of the window, nothing can beat it
            if key[r - 1, c] == me and key[r, c - 1] == me and key[r, c + 1] == me:
                if key[r + 1, c] == me:
                    continue
            same = 0
            for rr in range(r - 1, r + 2):
                for cc in range(c - 1, c + 2):
                    same += key[rr, cc] == me
            if same >= 5:
                continue
            field = me >> 8
            counts[:] = 0
            for rr in range(r - 1, r + 2):
                for cc in range(c - 1, c + 2):
                    if key[rr, cc] >> 8 == field:
                        counts[key[rr, cc] & 255] += 1
            out[r, c] = field * 256 + _winner(counts, own)
    return out


@njit(cache=True, nogil=True)
def _majority(zone: np.ndarray, owner: np.ndarray, size: int, n_max: int) -> np.ndarray:
    """One pass of :func:`majority_passes` on rasters padded by the window's reach."""
    h, w = zone.shape
    out = zone.copy()
    counts = np.zeros(n_max + 1, np.int32)
    lo = size // 2
    for r in range(lo, h - size + 1 + lo):
        for c in range(lo, w - size + 1 + lo):
            own = zone[r, c]
            if own == 0:
                continue
            field = owner[r, c]
            counts[:] = 0
            for rr in range(r - lo, r - lo + size):
                for cc in range(c - lo, c - lo + size):
                    if owner[rr, cc] == field:
                        counts[zone[rr, cc]] += 1
            out[r, c] = _winner(counts, own)
    return out


@njit(cache=True, nogil=True)
def _winner(counts: np.ndarray, own: int) -> int:
    """The zone (1..) with the most votes; a tie keeps ``own``, else the lowest (``counts[0]``:
    pixels without a zone, no vote)."""
    best = own
    for k in range(1, len(counts)):
        if counts[k] > counts[best]:
            best = k
    return best


@njit(cache=True, nogil=True)
def label_equal(zone: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected patches of equal non-zero ``zone`` within one field, numbered 1.. in raster order.

    Returns
    -------
    tuple
        ``int32`` labels (0 where ``zone`` is 0) and the number of patches. A patch's number
        follows the raster order of its first pixel, so it does not depend on where the
        raster starts.
    """
    h, w = zone.shape
    labels = np.zeros((h, w), np.int32)
    parent = np.zeros(1024, np.int32)
    n = 0
    for r in range(h):
        for c in range(w):
            k = zone[r, c]
            if k == 0:
                continue
            f = owner[r, c]
            up = labels[r - 1, c] if r > 0 and zone[r - 1, c] == k and owner[r - 1, c] == f else 0
            left = labels[r, c - 1] if c > 0 and zone[r, c - 1] == k and owner[r, c - 1] == f else 0
            if up == 0 and left == 0:
                n += 1
                if n >= len(parent):
                    grown = np.zeros(2 * len(parent), np.int32)
                    grown[: len(parent)] = parent
                    parent = grown
                parent[n] = n
                labels[r, c] = n
            elif up == 0 or left == 0 or up == left:
                labels[r, c] = max(up, left)
            else:
                a, b = _root(parent, up), _root(parent, left)
                parent[max(a, b)] = min(a, b)  # the root is the set's first label
                labels[r, c] = min(a, b)
    final = np.zeros(n + 1, np.int32)
    count = 0
    for i in range(1, n + 1):
        root = _root(parent, i)
        if root == i:
            count += 1
            final[i] = count
        else:
            final[i] = final[root]
    for r in range(h):
        for c in range(w):
            labels[r, c] = final[labels[r, c]]
    return labels, count


@njit(cache=True, nogil=True)
def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def fill_nearest(zone: np.ndarray, owner: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``zone`` with every ``target`` pixel given the zone of the nearest zoned pixel.

    Nearest along 4-connected paths through target pixels of the same field (breadth
    first, neighbours in the order up, left, right, down); a target pixel no such path
    reaches stays 0.
    """
    h, w = zone.shape
    out = zone.copy()
    n_target = 0
    for r in range(h):
        for c in range(w):
            if target[r, c] and out[r, c] == 0:
                n_target += 1
    queue = np.empty(n_target, np.int64)
    head, tail = 0, 0
    dr = (-1, 0, 0, 1)
    dc = (0, -1, 1, 0)
    for r in range(h):  # the first wave: target pixels next to a zoned pixel
        for c in range(w):
            if not target[r, c] or out[r, c] != 0:
                continue
            for d in range(4):
                rr, cc = r + dr[d], c + dc[d]
                if 0 <= rr < h and 0 <= cc < w and owner[rr, cc] == owner[r, c]:
                    k = zone[rr, cc]
                    if k > 0 and not target[rr, cc]:
                        out[r, c] = k
                        queue[tail] = r * w + c
                        tail += 1
                        break
    while head < tail:
        i = queue[head]
        head += 1
        r, c = i // w, i % w
        for d in range(4):
            rr, cc = r + dr[d], c + dc[d]
            if 0 <= rr < h and 0 <= cc < w and target[rr, cc] and out[rr, cc] == 0:
                if owner[rr, cc] == owner[r, c]:
                    out[rr, cc] = out[r, c]
                    queue[tail] = rr * w + cc
                    tail += 1
    return out


@njit(cache=True, nogil=True)
def patch_table(labels: np.ndarray, zone: np.ndarray, owner: np.ndarray, count: int):
    """Size, zone and field of every patch, and its borders with patches of the same field.

    Parameters
    ----------
    labels
        Patch labels ``1..count - 1`` (0 = none), e.g. from :func:`label_equal`.
    zone, owner
        The zone and field of each pixel.
    count
        Number of labels including 0.

    Returns
    -------
    tuple
        ``sizes`` (pixels), ``zone_of``, ``field_of`` per label, and ``a, b``: one entry per
        pixel edge between two different patches of the same field (``a < b``).
    """
    h, w = labels.shape
    sizes = np.zeros(count, np.int64)
    zone_of = np.zeros(count, zone.dtype)
    field_of = np.zeros(count, np.int64)
    n_edges = 0
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k == 0:
                continue
            sizes[k] += 1
            zone_of[k] = zone[r, c]
            field_of[k] = owner[r, c]
            if c + 1 < w and _border(labels[r, c + 1], k, owner[r, c + 1], owner[r, c]):
                n_edges += 1
            if r + 1 < h and _border(labels[r + 1, c], k, owner[r + 1, c], owner[r, c]):
                n_edges += 1
    a = np.empty(n_edges, np.int64)
    b = np.empty(n_edges, np.int64)
    i = 0
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k == 0:
                continue
            for rr, cc in ((r, c + 1), (r + 1, c)):
                if rr < h and cc < w:
                    j = labels[rr, cc]
                    if _border(j, k, owner[rr, cc], owner[r, c]):
                        a[i], b[i] = min(j, k), max(j, k)
                        i += 1
    return sizes, zone_of, field_of, a, b


@njit(cache=True, nogil=True)
def _border(j: int, k: int, field_j: int, field_k: int) -> bool:
    """Whether patch ``j`` next to patch ``k`` is another patch of the same field."""
    return j != 0 and j != k and field_j == field_k


@njit(cache=True, nogil=True)
def zone_codes(
    zone: np.ndarray, owner: np.ndarray, single: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``owner * 256 + zone`` of the pixels to trace, and the code of each field left whole.

    A field is left whole where ``single`` allows it (per owner) and every one of its
    pixels has the same zone: it is its own polygon, nothing to trace.

    Returns
    -------
    tuple
        ``int32`` codes (0 where ``zone`` or ``owner`` is 0 and in fields left whole) and,
        per owner, the code of a field left whole (0 for the others).
    """
    one = np.zeros(len(single), np.int64)
    h, w = zone.shape
    for r in range(h):
        for c in range(w):
            f = owner[r, c]
            if f == 0 or one[f] < 0:
                continue
            k = zone[r, c]
            one[f] = f * 256 + k if k > 0 and one[f] in (0, f * 256 + k) else -1
    for f in range(len(single)):
        if one[f] < 0 or not single[f]:
            one[f] = 0
    code = np.zeros((h, w), np.int32)
    for r in range(h):
        for c in range(w):
            f = owner[r, c]
            if zone[r, c] > 0 and one[f] == 0:
                code[r, c] = f * 256 + zone[r, c]
    return code, one


@njit(cache=True, nogil=True)
def copy_fields(
    canvas: np.ndarray, zone: np.ndarray, owner: np.ndarray, chosen: np.ndarray
) -> None:
    """``canvas = zone`` at the pixels of the fields ``chosen`` (boolean per owner), in place."""
    h, w = zone.shape
    for r in range(h):
        for c in range(w):
            if chosen[owner[r, c]]:
                canvas[r, c] = zone[r, c]

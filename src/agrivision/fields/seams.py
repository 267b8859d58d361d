"""Pieces of polygons cut by chunk borders, and their merge across those seams.

Geometry is in *pixel space* (x = column, y = -row), where a seam between two chunks is the
same integer line for both sides: shared edges match exactly. Each chunk reports the stretches
of its inner borders that its pieces cover; pieces of the same class (and field) whose
stretches overlap from both sides of a border (or, with 8-connectivity, touch) are grouped
(connected components) and unioned, holes kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

#: Tolerance (pixels) for "a vertex lies on a chunk border" and "stretches overlap".
SEAM_EPS = 1e-9
_EMPTY_GEOMS = np.empty(0, dtype=object)
_EMPTY_INTS = np.empty(0, dtype=np.int64)


class Intervals(NamedTuple):
    """Where pieces lie on inner chunk borders, one row per stretch of border.

    ``line`` names a global border line (``2 * column`` for the vertical line at that column,
    ``2 * row + 1`` for the horizontal one), ``side`` is 0 for the piece left of / above the
    line, 1 for right of / below, and ``lo``..``hi`` the stretch along the line (pixels).
    """

    piece: np.ndarray
    line: np.ndarray
    side: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def empty(cls) -> Intervals:
        return cls(_EMPTY_INTS, _EMPTY_INTS, _EMPTY_INTS, np.empty(0), np.empty(0))


class Pieces(NamedTuple):
    """Polygon pieces (pixel space) with their class, field index (-1: none) and intervals."""

    geoms: np.ndarray
    codes: np.ndarray
    fidx: np.ndarray
    intervals: Intervals

    @classmethod
    def empty(cls) -> Pieces:
        return cls(_EMPTY_GEOMS, _EMPTY_INTS, _EMPTY_INTS, Intervals.empty())

    @classmethod
    def concat(cls, parts: Sequence[Pieces]) -> Pieces:
        """One set of pieces, in order; interval piece ids renumbered to match."""
        if not parts:
            return cls.empty()
        start = np.cumsum([0, *(len(p.geoms) for p in parts[:-1])])
        intervals = [
            p.intervals._replace(piece=p.intervals.piece + s)
            for p, s in zip(parts, start, strict=True)
        ]
        return cls(
            np.concatenate([p.geoms for p in parts]),
            np.concatenate([p.codes for p in parts]),
            np.concatenate([p.fidx for p in parts]),
            Intervals(*map(np.concatenate, zip(*intervals, strict=True))),
        )

    def take(self, mask: np.ndarray) -> Pieces:
        """The pieces where ``mask``, in order, with their intervals (renumbered)."""
        new_id = np.cumsum(mask) - 1
        iv = self.intervals
        keep = mask[iv.piece]
        return Pieces(
            self.geoms[mask],
            self.codes[mask],
            self.fidx[mask],
            Intervals(
                new_id[iv.piece[keep]], iv.line[keep], iv.side[keep], iv.lo[keep], iv.hi[keep]
            ),
        )


def seam_intervals(
    geoms: np.ndarray,
    borders: tuple[int, int, int, int],
    seams: tuple[bool, bool, bool, bool],
    connectivity: int,
) -> Intervals:
    """The stretches of the chunk's inner borders covered by each piece's boundary."""
    # Only pieces whose bounding box reaches an inner border can lie on it.
    left, bottom, right, top = borders
    box = shapely.bounds(geoms)
    near = np.zeros(len(geoms), dtype=bool)
    for index, (line, inner) in enumerate(zip((left, -bottom, right, -top), seams, strict=True)):
        if inner:
            near |= np.abs(box[:, index] - line) < SEAM_EPS
    candidates = np.flatnonzero(near)
    parts, part_of = shapely.get_parts(geoms[candidates], return_index=True)
    part_of = candidates[part_of]
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy, vertex_of = shapely.get_coordinates(rings, return_index=True)
    piece = part_of[ring_of[vertex_of]]
    segment = vertex_of[:-1] == vertex_of[1:]  # consecutive vertices of one ring
    found = []
    # left, bottom, right, top: lines x = c0, y = -r1, x = c1, y = -r0 in pixel space
    for index, (border, inner) in enumerate(zip(borders, seams, strict=True)):
        if not inner:
            continue
        vertical = index % 2 == 0
        across, along = (0, 1) if vertical else (1, 0)
        on = np.abs(xy[:, across] - (border if vertical else -border)) < SEAM_EPS
        both = segment & on[:-1] & on[1:]
        a, b = xy[:-1][both, along], xy[1:][both, along]
        lo, hi, who = np.minimum(a, b), np.maximum(a, b), piece[:-1][both]
        if connectivity == 8:
            # a piece may reach the line in a single vertex: a corner touch, a link with 8
            lo, hi, who = np.r_[lo, xy[on, along]], np.r_[hi, xy[on, along]], np.r_[who, piece[on]]
        line = 2 * border + (0 if vertical else 1)
        side = 1 if index in (0, 3) else 0  # the chunk lies right of its left border, etc.
        found.append(Intervals(who, np.full(len(who), line), np.full(len(who), side), lo, hi))
    if not found:
        return Intervals.empty()
    return Intervals(*map(np.concatenate, zip(*found, strict=True)))


def merge_seams(
    geoms: np.ndarray,
    codes: np.ndarray,
    fidx: np.ndarray,
    intervals: Intervals,
    *,
    connectivity: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union pieces of the same class and field that continue across chunk borders.

    Two pieces continue each other when their stretches on one border line, from opposite
    sides, overlap (a shared edge); with 8-connectivity touching (a corner) is enough.
    Stretches are 1-D, so pairs come from an STRtree of degenerate boxes, without polygon
    predicates (which cost seconds on large polygons).
    """
    piece, line, side, lo, hi = intervals
    if len(piece) == 0:
        return geoms, codes, fidx
    key = (fidx[piece] + 1) * (int(codes.max()) + 1) + codes[piece]  # >= 0, -1 is no field
    group = np.unique(line * (int(key.max()) + 1) + key, return_inverse=True)[1]
    boxes = shapely.box(lo, group, hi, group)  # envelopes meet: same group, stretches meet
    low, high = np.flatnonzero(side == 0), np.flatnonzero(side == 1)
    i, j = shapely.STRtree(boxes[high]).query(boxes[low])
    a, b = low[i], high[j]
    if connectivity == 4:
        shared = np.minimum(hi[a], hi[b]) - np.maximum(lo[a], lo[b]) > SEAM_EPS
        a, b = a[shared], b[shared]
    on_seam = np.unique(piece)
    n = len(on_seam)
    u, v = np.searchsorted(on_seam, piece[a]), np.searchsorted(on_seam, piece[b])
    graph = coo_array((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n))
    label = connected_components(graph, directed=False)[1]
    # Groups whose border stretches all end on pixel corners (no field cuts) become
    # edge-matched coverages once their border edges get a vertex at every pixel corner;
    # GEOS then dissolves them without noding, much faster than union_all (figures in
    # benchmarks/README.md). Groups with field cuts (vertices not
    # exactly matched across the border) take union_all.
    cut = np.zeros(n, dtype=bool)
    cut[np.searchsorted(on_seam, piece[(lo != np.round(lo)) | (hi != np.round(hi))])] = True
    exact = (np.bincount(label) > 1) & (np.bincount(label, weights=cut) == 0)
    seam_geoms = geoms[on_seam]
    xs = np.unique(line[line % 2 == 0] // 2).astype(np.float64)  # border lines, pixel space
    ys = np.sort(-np.unique(line[line % 2 == 1] // 2).astype(np.float64))
    dense = exact[label]
    if dense.any():
        seam_geoms[dense] = _split_border_edges(seam_geoms[dense], xs, ys)
    merged, first = union_groups(
        seam_geoms, label, union=lambda group, g: _dissolve(group, exact[g], xs, ys)
    )
    rest = np.ones(len(geoms), dtype=bool)
    rest[on_seam] = False
    return (
        np.concatenate([geoms[rest], merged]),
        np.concatenate([codes[rest], codes[on_seam][first]]),
        np.concatenate([fidx[rest], fidx[on_seam][first]]),
    )


def _dissolve(group: np.ndarray, exact: bool, xs: np.ndarray, ys: np.ndarray) -> shapely.Geometry:
    """Union of pieces that continue each other across chunk borders, holes kept.

    A piece's holes cannot reach its chunk border (a gap there is outside the piece), bar a
    corner touch, so merging cannot change them: they are taken off before the union and
    given back after it. GEOS then dissolves outlines only, an order of magnitude faster on
    groups with many holes (figures in ``benchmarks/README.md``).
    ``exact``: the group is an edge-matched coverage (see ``_split_border_edges``).
    """
    parts = shapely.get_parts(group)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    bounds = shapely.bounds(rings)
    on_border = (
        _on_lines(bounds[:, 0], xs)
        | _on_lines(bounds[:, 2], xs)
        | _on_lines(bounds[:, 1], ys)
        | _on_lines(bounds[:, 3], ys)
    )
    free = np.r_[False, ring_of[1:] == ring_of[:-1]] & ~on_border  # holes off the borders
    outlines = shapely.polygons(rings[~free], indices=ring_of[~free])  # one per part
    merged = (shapely.coverage_union_all if exact else shapely.union_all)(outlines)
    if not free.any():
        return merged
    # Each hole goes to the merged polygon that holds its piece.
    out = shapely.get_parts(merged)
    inside = shapely.point_on_surface(outlines)
    which, holder = shapely.STRtree(out).query(inside, predicate="intersects")
    holder_of_part = np.empty(len(outlines), dtype=np.intp)
    holder_of_part[which] = holder
    hole_holder = holder_of_part[ring_of[free]]
    holes = rings[free]
    for target in np.unique(hole_holder):
        own = shapely.get_rings(out[target])
        extra = holes[hole_holder == target]
        out[target] = shapely.polygons(own[0], holes=np.concatenate([own[1:], extra]))
    return out[0] if len(out) == 1 else shapely.multipolygons(out)


def _on_lines(values: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Whether each value lies on one of the sorted ``lines`` (within ``SEAM_EPS``)."""
    if len(lines) == 0:
        return np.zeros(len(values), dtype=bool)
    i = np.searchsorted(lines, values)
    below, above = lines[np.maximum(i - 1, 0)], lines[np.minimum(i, len(lines) - 1)]
    return np.minimum(np.abs(values - below), np.abs(values - above)) < SEAM_EPS


def _split_border_edges(geoms: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pixel-space polygons with a vertex at every pixel corner of their edges on the vertical
    lines ``x in xs`` and horizontal lines ``y in ys`` (chunk borders; integer vertices)."""
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    # Only rings whose bounds lie on a border line can have edges there (most holes do not).
    box = shapely.bounds(rings)
    touch = np.flatnonzero(
        _on_lines(box[:, 0], xs)
        | _on_lines(box[:, 2], xs)
        | _on_lines(box[:, 1], ys)
        | _on_lines(box[:, 3], ys)
    )
    if len(touch) == 0:
        return geoms
    xy, vertex_of = shapely.get_coordinates(rings[touch], return_index=True)
    a, b = xy[:-1], xy[1:]
    same = vertex_of[:-1] == vertex_of[1:]
    vertical = same & (a[:, 0] == b[:, 0]) & np.isin(a[:, 0], xs)
    horizontal = same & (a[:, 1] == b[:, 1]) & np.isin(a[:, 1], ys)
    along = np.r_[vertical.astype(np.intp), 0]  # the coordinate that changes along the edge
    delta = np.r_[(b - a)[np.arange(len(a)), along[:-1]], 0.0]
    extra = np.where(np.r_[vertical | horizontal, False], np.abs(delta) - 1, 0)
    counts = 1 + np.maximum(extra, 0).astype(np.intp)  # each vertex, then the corners after it
    out = np.repeat(xy, counts, axis=0)
    source = np.repeat(np.arange(len(xy)), counts)
    k = np.arange(len(out)) - np.repeat(np.cumsum(counts) - counts, counts)
    out[np.arange(len(out)), along[source]] += np.sign(delta)[source] * k
    rings[touch] = shapely.linearrings(out, indices=np.repeat(vertex_of, counts))
    return shapely.multipolygons(shapely.polygons(rings, indices=ring_of), indices=part_of)


def components(geoms: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Connected-component label of each geometry; geometries link if they touch, same key."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    link = (left < right) & (key[left] == key[right])
    n = len(geoms)
    graph = coo_array((np.ones(link.sum(), dtype=np.int8), (left[link], right[link])), (n, n))
    return connected_components(graph, directed=False)[1]


def union_groups(
    geoms: np.ndarray, label: np.ndarray, *, union: Callable[[np.ndarray, int], shapely.Geometry]
) -> tuple[np.ndarray, np.ndarray]:
    """One geometry per label (``union(members, label)``) and the index of each group's first.

    ``label`` must number the groups 0..n-1 (as connected components do)."""
    order = np.argsort(label, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(label[order]) != 0])
    sizes = np.diff(np.r_[starts, len(order)])
    out = geoms[order[starts]].copy()
    for g in np.flatnonzero(sizes > 1):
        out[g] = union(geoms[order[starts[g] : starts[g] + sizes[g]]], int(g))
    return out, order[starts]

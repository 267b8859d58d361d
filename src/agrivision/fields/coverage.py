"""Exact cell coverage fractions of polygons on a raster grid.

The coverage fraction of a cell is the share of its area inside a polygon (exactextract's
``coverage``). It is computed here by signed-area accumulation, the method of exact-area
font rasterisers: every polygon edge deposits, row by row, the area of each cell it crosses
that lies to its right (``area``) and a carry for all cells further right (``cover``); a
running sum along each row then yields the exact covered area of every cell. The cost is
O(perimeter + bounding box) per polygon, with no geometry library call per cell. Hand-written
(numba) because it is the inner loop of :func:`agrivision.fields.zonal.zonal_stats` and
several hundred times faster than intersecting cell boxes with shapely (same cells, same
areas; figures in ``benchmarks/README.md``).

Coordinates are *pixel space*: column = (x - x0) / dx, row = (y - y0) / dy of the raster's
affine transform, so cell (r, c) is the unit square [c, c + 1] x [r, r + 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numba import njit

# Running sums leave rounding noise (~1e-16) where the exact coverage is 0, so a cell counts as
# covered above this. Kept tiny: exactextract counts slivers down to ~1e-10 of a cell, and its
# quantiles depend on the number of distinct values, slivers included.
COVERAGE_EPS = 1e-13


@dataclass(frozen=True)
class PixelRings:
    """Polygon rings of many fields in pixel space, as flat arrays (CSR layout).

    Attributes
    ----------
    cols, rows : float64 arrays
        Vertex coordinates in pixel space; every ring is closed (last vertex = first).
    ring_ptr : int64 array, length n_rings + 1
        Ring ``i`` is ``cols[ring_ptr[i]:ring_ptr[i + 1]]``.
    ring_sign : float64 array, length n_rings
        +1 or -1 so that exteriors add and holes subtract coverage, whatever the orientation of
        the input rings and the sign of the transform.
    field_ptr : int64 array, length n_fields + 1
        Field ``j`` owns rings ``field_ptr[j]:field_ptr[j + 1]``.
    bbox : int64 array, shape (n_fields, 4)
        ``row0, row1, col0, col1`` of the cells the field may cover, clipped to the raster
        (empty, i.e. row0 >= row1 or col0 >= col1, for fields wholly outside).
    area_px : float64 array, length n_fields
        Polygon area in cells (for the share of the field inside the raster).
    """

    cols: np.ndarray
    rows: np.ndarray
    ring_ptr: np.ndarray
    ring_sign: np.ndarray
    field_ptr: np.ndarray
    bbox: np.ndarray
    area_px: np.ndarray

    def subset(self, fields: np.ndarray) -> PixelRings:
        """Return the rings of the given field positions only (a compact copy)."""
        r0, r1 = self.field_ptr[fields], self.field_ptr[fields + 1]
        ring_idx = _ranges(r0, r1)
        c0, c1 = self.ring_ptr[ring_idx], self.ring_ptr[ring_idx + 1]
        coord_idx = _ranges(c0, c1)
        return PixelRings(
            cols=self.cols[coord_idx],
            rows=self.rows[coord_idx],
            ring_ptr=np.concatenate([[0], np.cumsum(c1 - c0)]).astype(np.int64),
            ring_sign=self.ring_sign[ring_idx],
            field_ptr=np.concatenate([[0], np.cumsum(r1 - r0)]).astype(np.int64),
            bbox=self.bbox[fields],
            area_px=self.area_px[fields],
        )


def _ranges(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(start[i], stop[i])`` for all i, vectorised."""
    lengths = stop - start
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(start - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def pixel_rings(geoms: np.ndarray, transform: Affine, shape: tuple[int, int]) -> PixelRings:
    """Convert (Multi)Polygons to pixel-space rings of a raster grid.

    Parameters
    ----------
    geoms : array of shapely Polygon/MultiPolygon
        Valid, non-empty polygons in the raster's CRS.
    transform : Affine
        The raster's affine transform (no rotation).
    shape : (rows, cols)
        The raster's size, used to clip the bounding boxes.
    """
    geoms = np.asarray(geoms, dtype=object)
    parts, part_field = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    n_fields, n_rings = len(geoms), len(rings)

    cols = (coords[:, 0] - transform.c) / transform.a
    rows = (coords[:, 1] - transform.f) / transform.e
    ring_ptr = np.searchsorted(coord_ring, np.arange(n_rings + 1)).astype(np.int64)
    ring_field = part_field[ring_part]
    field_ptr = np.searchsorted(ring_field, np.arange(n_fields + 1)).astype(np.int64)

    # Shoelace sign per ring in pixel space; the first ring of each part is its exterior.
    same_ring = coord_ring[:-1] == coord_ring[1:]
    cross = (cols[:-1] * rows[1:] - cols[1:] * rows[:-1]) * same_ring
    signed = np.bincount(coord_ring[:-1], weights=cross, minlength=n_rings)
    exterior = np.ones(n_rings, dtype=bool)
    exterior[1:] = ring_part[1:] != ring_part[:-1]
    # The accumulation below yields -area for a ring of positive shoelace area.
    ring_sign = np.where(exterior, -1.0, 1.0) * np.where(signed >= 0, 1.0, -1.0)

    bbox = np.zeros((n_fields, 4), dtype=np.int64)
    starts = ring_ptr[field_ptr[:-1]]
    nonempty = ring_ptr[field_ptr[1:]] > starts
    if nonempty.any():
        s = starts[nonempty]
        bbox[nonempty, 0] = np.floor(np.minimum.reduceat(rows, s))
        bbox[nonempty, 1] = np.ceil(np.maximum.reduceat(rows, s))
        bbox[nonempty, 2] = np.floor(np.minimum.reduceat(cols, s))
        bbox[nonempty, 3] = np.ceil(np.maximum.reduceat(cols, s))
    bbox[:, 0:2] = np.clip(bbox[:, 0:2], 0, shape[0])
    bbox[:, 2:4] = np.clip(bbox[:, 2:4], 0, shape[1])
    area_px = shapely.area(geoms) / abs(transform.a * transform.e)
    return PixelRings(cols, rows, ring_ptr, ring_sign, field_ptr, bbox, area_px)


@njit(cache=True, nogil=True)
def _accumulate_ring(cols, rows, sign, row0, col0, cover, area):
    """Deposit one closed ring's edges into ``cover``/``area`` of a window at (row0, col0)."""
    h, w = area.shape
    for i in range(len(cols) - 1):
        x0 = cols[i] - col0
        y0 = rows[i] - row0
        x1 = cols[i + 1] - col0
        y1 = rows[i + 1] - row0
        if y0 == y1:
            continue  # horizontal edges enclose no area
        direction = sign
        if y0 > y1:
            x0, y0, x1, y1 = x1, y1, x0, y0
            direction = -sign
        dxdy = (x1 - x0) / (y1 - y0)
        r_start = max(int(np.floor(y0)), 0)
        r_stop = min(int(np.ceil(y1)), h)
        for r in range(r_start, r_stop):
            ya = max(y0, float(r))
            yb = min(y1, float(r + 1))
            if yb <= ya:
                continue
            xa = x0 if ya == y0 else x0 + (ya - y0) * dxdy
            xb = x1 if yb == y1 else x0 + (yb - y0) * dxdy
            d = (yb - ya) * direction
            xl = min(xa, xb)
            xr = max(xa, xb)
            kl = int(np.floor(xl))
            kr = int(np.ceil(xr)) - 1
            if kr < kl:  # vertical piece on a cell border: everything right of it is inside
                kr = kl - 1
            elif kl == kr:  # within one cell column: the covered share is linear in x
                if 0 <= kl < w:
                    area[r, kl] += d * (kl + 1 - 0.5 * (xl + xr))
            else:
                length = xr - xl
                for k in range(max(kl, 0), min(kr, w - 1) + 1):
                    if k == kl:
                        g = (kl + 1 - xl) ** 2 / (2 * length)
                    elif k == kr:
                        g = 1.0 - (xr - kr) ** 2 / (2 * length)
                    else:
                        g = (k + 0.5 - xl) / length
                    area[r, k] += d * g
            cover[r, min(max(kr + 1, 0), w)] += d


@njit(cache=True, nogil=True)
def group_coverage(cols, rows, ring_ptr, ring_sign, field_ptr, bbox, win_row0, win_col0, win_width):
    """Sparse coverage of several fields inside one raster window.

    Returns ``(cell_ptr, cell_idx, cell_cov, total)``: field ``j`` covers the window cells
    ``cell_idx[cell_ptr[j]:cell_ptr[j + 1]]`` (flat, row-major indices into the window, which
    is ``win_width`` columns wide and starts at global cell (win_row0, win_col0)) with coverage
    fractions ``cell_cov[...]`` in (0, 1]; ``total[j]`` is their sum.
    """
    n = bbox.shape[0]
    sizes = (bbox[:, 1] - bbox[:, 0]) * (bbox[:, 3] - bbox[:, 2])
    sizes = np.maximum(sizes, 0)
    cell_idx = np.empty(sizes.sum(), dtype=np.int64)
    cell_cov = np.empty(sizes.sum(), dtype=np.float64)
    cell_ptr = np.zeros(n + 1, dtype=np.int64)
    total = np.zeros(n, dtype=np.float64)
    m = 0
    for j in range(n):
        r0, r1, c0, c1 = bbox[j, 0], bbox[j, 1], bbox[j, 2], bbox[j, 3]
        if r1 > r0 and c1 > c0:
            cover = np.zeros((r1 - r0, c1 - c0 + 1))
            area = np.zeros((r1 - r0, c1 - c0))
            for q in range(field_ptr[j], field_ptr[j + 1]):
                a, b = ring_ptr[q], ring_ptr[q + 1]
                _accumulate_ring(cols[a:b], rows[a:b], ring_sign[q], r0, c0, cover, area)
            for r in range(r1 - r0):
                run = 0.0
                base = (r0 + r - win_row0) * win_width + (c0 - win_col0)
                for k in range(c1 - c0):
                    run += cover[r, k]
                    v = run + area[r, k]
                    if v > COVERAGE_EPS:
                        v = min(v, 1.0)
                        cell_idx[m] = base + k
                        cell_cov[m] = v
                        total[j] += v
                        m += 1
        cell_ptr[j + 1] = m
    return cell_ptr, cell_idx[:m].copy(), cell_cov[:m].copy(), total

"""Each field's own window of a lazy raster, for work that needs the whole field at once.

A sieve or a per-field classification must see every pixel of a field, whatever the dask
chunks; a chunk-by-chunk pass cannot give it that. :func:`field_windows` reads the raster one
chunk row at a time (full width, every chunk once) and hands over the fields that end in that
row, each with the window of pixels it touches. Chunk rows stay in memory only while a field
that still has to be handed over reaches into them, so memory is bounded by the chunk size
and by the tallest field, never by the scene.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import shapely
import xarray as xr
from affine import Affine

from agrivision.fields.prepare import prepare_fields
from agrivision.fields.rasterize import field_raster, ids_to_codes
from agrivision.grid import grid_of


@dataclass(frozen=True)
class FieldWindow:
    """One field and the pixels of the window it touches.

    ``values`` is the raster's ``(..., height, width)`` window; ``inside`` marks the pixels
    whose centre lies in the field (as :func:`~agrivision.fields.rasterize.field_raster`
    burns them: where fields overlap, the later one), ``touched`` every pixel the field
    touches (inside included); ``transform`` maps window pixels to the raster CRS.
    """

    position: int
    field_id: Any
    geometry: shapely.Geometry
    values: np.ndarray
    inside: np.ndarray
    touched: np.ndarray
    transform: Affine


def field_windows(raster: xr.DataArray, fields: gpd.GeoDataFrame) -> Iterator[list[FieldWindow]]:
    """The window of every field that overlaps ``raster``, in batches of one chunk row.

    Parameters
    ----------
    raster
        ``(y, x)`` or ``(time, y, x)`` raster with a CRS (dask-backed or numpy).
    fields
        Field polygons with a unique ``field_id``, any CRS (reprojected to the raster's).

    Yields
    ------
    list of FieldWindow
        The fields whose last touched pixel row lies in one chunk row, in input order;
        batches come top to bottom. Fields that touch no pixel of the raster are left out.
    """
    grid = grid_of(raster)
    prepared = prepare_fields(fields, raster.rio.crs)
    data = raster.data if isinstance(raster.data, da.Array) else da.from_array(raster.data)
    height, width = grid.shape
    bounds = _pixel_bounds(prepared.geometry.to_numpy(), grid.affine, height, width)
    row_edges = np.cumsum((0, *data.chunks[-2]))
    present = np.flatnonzero((bounds[:, 1] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 2]))
    first = np.searchsorted(row_edges, bounds[present, 0], side="right") - 1
    last = np.searchsorted(row_edges, bounds[present, 1] - 1, side="right") - 1
    n_rows = len(row_edges) - 1
    # the top chunk row still needed by a field handed over in chunk row k or later
    keep_from = np.full(n_rows + 1, n_rows)
    np.minimum.at(keep_from, last, first)
    keep_from = np.minimum.accumulate(keep_from[::-1])[::-1]
    fid = field_raster(prepared, raster)
    codes = ids_to_codes(fid, prepared["field_id"].to_numpy())
    fid_data = fid.data.rechunk(data.chunks[-2:])
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    env = rasterio.Env()  # one GDAL environment for all fields, not one per rasterised field
    ids = prepared["field_id"].to_numpy()
    geoms = prepared.geometry.to_numpy()
    for k in range(n_rows):
        batch = present[last == k]
        if not len(batch):
            continue
        for j in range(int(keep_from[k]), k + 1):
            if j not in cache:
                rows = slice(row_edges[j], row_edges[j + 1])
                cache[j] = dask.compute(data[..., rows, :], fid_data[rows, :])
        out = []
        for pos in batch:
            r0, r1, c0, c1 = bounds[pos]
            values = _window([c[0] for c in cache.values()], cache, row_edges, r0, r1, c0, c1)
            inside = _window([c[1] for c in cache.values()], cache, row_edges, r0, r1, c0, c1)
            inside = inside == codes[pos]
            transform = grid.affine * Affine.translation(c0, r0)
            with env:
                touched = inside | rasterio.features.geometry_mask(
                    [geoms[pos]], inside.shape, transform, all_touched=True, invert=True
                )
            out.append(
                FieldWindow(int(pos), ids[pos], geoms[pos], values, inside, touched, transform)
            )
        yield out
        for j in [j for j in cache if j < keep_from[k + 1]]:
            del cache[j]


def _window(arrays: list, cache: dict, row_edges: np.ndarray, r0, r1, c0, c1) -> np.ndarray:
    """Rows r0..r1, columns c0..c1 of the cached chunk rows (``arrays`` in ``cache`` order)."""
    pieces = [
        a[
            ...,
            max(r0, row_edges[j]) - row_edges[j] : min(r1, row_edges[j + 1]) - row_edges[j],
            c0:c1,
        ]
        for j, a in zip(cache, arrays, strict=True)
        if row_edges[j] < r1 and row_edges[j + 1] > r0
    ]
    return pieces[0].copy() if len(pieces) == 1 else np.concatenate(pieces, axis=-2)


def _pixel_bounds(geoms: np.ndarray, affine: Affine, height: int, width: int) -> np.ndarray:
    """(row0, row1, col0, col1) of the pixels each geometry's bounding box touches, clipped."""
    b = shapely.bounds(geoms)
    inv = ~affine
    c0, r0 = inv * (b[:, 0], b[:, 3])
    c1, r1 = inv * (b[:, 2], b[:, 1])
    eps = 1e-9  # a border on a pixel edge does not touch the next pixel
    out = np.column_stack(
        (np.floor(r0 + eps), np.ceil(r1 - eps), np.floor(c0 + eps), np.ceil(c1 - eps))
    )
    out = np.nan_to_num(out, nan=0.0)
    out[:, :2] = np.clip(out[:, :2], 0, height)
    out[:, 2:] = np.clip(out[:, 2:], 0, width)
    return out.astype(np.int64)

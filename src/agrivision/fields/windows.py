"""The fields of a lazy raster in bands of rows, each field whole, for work that needs every pixel of a field at once.

A sieve or a per-field classification must see every pixel of a field, whatever the dask
chunks; a chunk-by-chunk pass cannot give it that. :func:`field_bands` reads the raster one
chunk row at a time (full width, every chunk once) and hands over the fields that end in that
row with the band of rows that holds them all. Chunk rows stay in memory only while a field
that still has to be handed over reaches into them, so memory is bounded by the chunk size
and by the tallest field, never by the scene.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import shapely
import xarray as xr
from affine import Affine

from agrivision.fields.prepare import prepare_fields
from agrivision.fields.rasterize import field_raster, ids_to_codes
from agrivision.grid import grid_of


@dataclass(frozen=True)
class FieldBand:
    """A band of raster rows and the fields handed over with it.

    ``values`` is the raster's ``(..., height, width)`` band, ``codes`` the field code of each
    pixel whose centre lies in a field (0: none; where fields overlap, the later one, as
    :func:`~agrivision.fields.rasterize.field_raster` burns them); fields of other bands
    appear in it too. ``positions``, ``field_ids``, ``geometries`` (raster CRS) and
    ``field_codes`` describe the band's own fields, ``bounds`` their touched pixels
    (``row0, row1, col0, col1`` in band pixels); ``transform`` maps band pixels to the CRS.
    """

    positions: np.ndarray
    field_ids: np.ndarray
    geometries: np.ndarray
    field_codes: np.ndarray
    bounds: np.ndarray
    values: np.ndarray
    codes: np.ndarray
    transform: Affine


def field_bands(raster: xr.DataArray, fields: gpd.GeoDataFrame) -> Iterator[FieldBand]:
    """Every field that overlaps ``raster``, whole, in bands of rows (one per chunk row).

    Parameters
    ----------
    raster
        ``(y, x)`` or ``(time, y, x)`` raster with a CRS (dask-backed or numpy).
    fields
        Field polygons with a unique ``field_id``, any CRS (reprojected to the raster's).

    Yields
    ------
    FieldBand
        The fields whose last touched pixel row lies in one chunk row, in input order, with
        the rows and columns that all of them touch; bands come top to bottom. Fields that
        touch no pixel of the raster are left out.
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
        box = bounds[batch]
        r0, r1 = int(box[:, 0].min()), int(box[:, 1].max())
        c0, c1 = int(box[:, 2].min()), int(box[:, 3].max())
        values = _window([c[0] for c in cache.values()], cache, row_edges, r0, r1, c0, c1)
        inside = _window([c[1] for c in cache.values()], cache, row_edges, r0, r1, c0, c1)
        yield FieldBand(
            positions=batch, field_ids=ids[batch], geometries=geoms[batch],
            field_codes=np.asarray(codes)[batch], bounds=box - np.array([r0, r0, c0, c0]),
            values=values, codes=inside, transform=grid.affine * Affine.translation(c0, r0),
        )  # fmt: skip
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

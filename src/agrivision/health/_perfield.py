"""Per-field reductions of lazy rasters: one pass, per-chunk bincounts, summed across chunks.

Every per-field table in :mod:`agrivision.health` (histograms, zone means, hotspot and class
counts) is a sum over pixels keyed by (field, time step, small integer key). Each dask chunk
returns only its non-zero (field, time, key) sums, so memory is bounded by the chunk size and
by the number of non-zero keys, never by the raster.
"""

from __future__ import annotations

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the .rio accessor
import shapely
import shapely.affinity
import xarray as xr

from agrivision.errors import GridError
from agrivision.fields.rasterize import codes_to_ids
from agrivision.grid import check_same_grid, grid_of
from agrivision.io.fields import area_ha

# Above this many dense (field, key) cells per pixel a chunk sorts instead of bincounting.
_DENSE_CELLS_PER_PIXEL = 4


def per_field_sums(
    field_ids: xr.DataArray,
    keys: xr.DataArray,
    n_keys: int,
    weights: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Pixel counts (and sums of ``weights``) per (field code, time step, key).

    Parameters
    ----------
    field_ids
        ``(y, x)`` int raster of field codes, ``0`` = no field (see ``field_raster``).
    keys
        ``(y, x)`` or ``(t, y, x)`` int raster on the same grid, values ``0..n_keys-1``;
        negative values are skipped (invalid pixels).
    n_keys
        Number of distinct keys.
    weights
        Optional float raster shaped like ``keys`` whose per-group sums are returned.

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``t`` (position along the leading dimension, 0 for 2-D),
        ``key``, ``count`` and, with ``weights``, ``sum``; sorted, only non-zero counts.
    """
    check_same_grid(keys, field_ids)
    key_data = as_dask(keys)
    if key_data.ndim == 2:
        key_data = key_data[None]
    fid = as_dask(field_ids).rechunk(key_data.chunks[1:])
    w_data = None
    if weights is not None:
        w_data = as_dask(weights)
        w_data = (w_data[None] if w_data.ndim == 2 else w_data).rechunk(key_data.chunks)

    # Unoptimised: keys and weights usually derive from the same index chunks, which must be
    # read once, not once per fused copy.
    key_blocks = key_data.to_delayed(optimize_graph=False)
    fid_blocks = fid.to_delayed(optimize_graph=False)
    w_blocks = None if w_data is None else w_data.to_delayed(optimize_graph=False)
    t_starts = np.cumsum((0, *key_data.chunks[0]))
    parts = [
        dask.delayed(_block_sums)(
            fid_blocks[i, j],
            key_blocks[t, i, j],
            None if w_blocks is None else w_blocks[t, i, j],
            n_keys,
            int(t_starts[t]),
        )
        for t, i, j in np.ndindex(*key_blocks.shape)
    ]
    code, t, key, *values = (np.concatenate(c) for c in zip(*dask.compute(*parts), strict=True))
    # One int64 per (code, time, key): codes < 2**31, so this holds while n_t * n_keys < 2**32.
    n_t = key_data.shape[0]
    cells, where = np.unique((code * n_t + t) * n_keys + key, return_inverse=True)
    table = pd.DataFrame(
        {
            "code": cells // (n_t * n_keys),
            "t": cells // n_keys % n_t,
            "key": cells % n_keys,
            "count": np.bincount(where, values[0], len(cells)).astype(np.int64),
        }
    )
    if weights is not None:
        table["sum"] = np.bincount(where, values[1], len(cells))
    return table


def group_index(sums: pd.DataFrame) -> np.ndarray:
    """0-based (code, t) group number of each row of a sorted :func:`per_field_sums` table."""
    code, t = sums["code"].to_numpy(), sums["t"].to_numpy()
    starts = np.ones(len(sums), bool)
    starts[1:] = (code[1:] != code[:-1]) | (t[1:] != t[:-1])
    return np.cumsum(starts) - 1


def as_dask(arr: xr.DataArray) -> da.Array:
    """The dask array of a (y, x) or (t, y, x) DataArray (numpy data become one chunk)."""
    if tuple(arr.dims[-2:]) != ("y", "x") or arr.ndim not in (2, 3):
        raise GridError(
            f"{arr.name or 'raster'} has dims {arr.dims}; expected (y, x) or (time, y, x)",
            fix="transpose or select so that y and x come last",
        )
    return arr.data if isinstance(arr.data, da.Array) else da.from_array(arr.data, chunks=-1)


def _block_sums(fid, key, w, n_keys: int, t0: int):
    out = []
    for t in range(key.shape[0]):
        k = key[t]
        ok = (k >= 0) & (fid > 0)
        if not ok.any():
            continue
        ids, inv = dense_codes(fid[ok])
        flat = inv * n_keys + k[ok]
        wt = None if w is None else w[t][ok].astype(np.float64)
        if len(ids) * n_keys <= _DENSE_CELLS_PER_PIXEL * flat.size + 65536:
            count = np.bincount(flat, minlength=len(ids) * n_keys)
            cells = np.flatnonzero(count)
            count = count[cells]
            sums = None if wt is None else np.bincount(flat, wt, len(ids) * n_keys)[cells]
        else:  # many fields x keys in this chunk: sort instead of a large dense table
            cells, where = np.unique(flat, return_inverse=True)
            count = np.bincount(where)
            sums = None if wt is None else np.bincount(where, wt)
        cols = [ids[cells // n_keys], np.full(cells.size, t0 + t), cells % n_keys, count]
        out.append(cols if sums is None else [*cols, sums])
    if not out:
        return [np.empty(0, np.int64)] * (4 if w is None else 5)
    return [np.concatenate(c) for c in zip(*out, strict=True)]


def dense_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique codes of an int array and each element's position among them (0..k-1).

    Same as ``np.unique(codes, return_inverse=True)``, but O(n) (no sort) when the codes
    span a small range, as field codes within a chunk do.
    """
    lo, hi = int(codes.min()), int(codes.max())
    if hi - lo <= 4 * codes.size + 65536:  # O(n) presence table instead of a sort
        present = np.bincount(codes - lo, minlength=hi - lo + 1) > 0
        ids = np.flatnonzero(present) + lo
        rank = np.cumsum(present) - 1
        return ids.astype(np.int64), rank[codes - lo]
    ids, inv = np.unique(codes, return_inverse=True)
    return ids.astype(np.int64), inv


def pixel_area_ha(raster: xr.DataArray) -> float:
    """Geodesic area of the raster's centre pixel in hectares (WGS84 ellipsoid), any CRS."""
    grid = grid_of(raster)
    row, col = grid.height // 2, grid.width // 2
    pixel = shapely.affinity.affine_transform(
        shapely.box(col, row, col + 1, row + 1), grid.affine.to_shapely()
    )
    return float(area_ha(gpd.GeoSeries([pixel], crs=raster.rio.crs)).iloc[0])


def id_columns(index: xr.DataArray) -> list[str]:
    """``field_id`` plus the leading (time) dimension's name for 3-D rasters."""
    return ["field_id"] + ([str(index.dims[0])] if index.ndim == 3 else [])


def with_field_ids(
    table: pd.DataFrame, index: xr.DataArray, field_ids: xr.DataArray
) -> pd.DataFrame:
    """Add ``field_id`` (from ``code``) and the time coordinate (from ``t``) to a table."""
    table = table.copy()
    table.insert(0, "field_id", codes_to_ids(field_ids, table["code"].to_numpy()))
    if index.ndim == 3:
        table[str(index.dims[0])] = index[index.dims[0]].values[table["t"].to_numpy()]
    return table.reset_index(drop=True)

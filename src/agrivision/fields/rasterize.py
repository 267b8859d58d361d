"""A lazy field-id raster: which field each pixel of a grid belongs to.

The raster is built per dask chunk with :func:`rasterio.features.rasterize` on the chunk's
window transform, from only the fields that intersect the chunk (found once, when the graph is
built, with the GeoDataFrame's spatial index). Each chunk task therefore carries only its own
geometries, and memory stays bounded by the chunk size.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import rasterio.windows
import rioxarray  # noqa: F401 - registers the .rio accessor
import shapely
import xarray as xr
from shapely import box

from agrivision.errors import NoOverlapError
from agrivision.fields.coverage import group_coverage, pixel_rings
from agrivision.fields.prepare import prepare_fields
from agrivision.grid import grid_of

ID_MAP_ATTR = "field_id_map"
_FULL_EPS = 1e-9
_INT32_MAX = np.iinfo(np.int32).max


def field_raster(
    fields: gpd.GeoDataFrame,
    like: xr.DataArray | xr.Dataset,
    *,
    column: str = "field_id",
    all_touched: bool = False,
    interior: bool = False,
    inner_buffer: float = 0.0,
) -> xr.DataArray:
    """Rasterise field polygons onto the grid of ``like``, lazily (one task per chunk).

    Parameters
    ----------
    fields
        Polygons with a unique ``column``; any CRS (reprojected to the raster CRS if needed).
    like
        Raster (or scene) whose ``y``/``x`` grid, CRS and chunks the result takes; a ``time``
        or other leading dimension is ignored (the result is 2-D).
    column
        Field id column. Positive integers (< 2**31) are burnt as they are; any other ids
        (strings, zero, negatives, floats) are burnt as ``1..n`` in row order and the ids are
        kept in ``attrs["field_id_map"]`` (code ``k`` is ``field_id_map[k - 1]``).
    all_touched
        Burn every pixel the polygon touches instead of the pixel-centre rule.
    interior
        Keep only the pixels wholly inside their field (exact coverage fraction 1, as
        :mod:`agrivision.fields.coverage` computes it): edge pixels, which mix the field with
        its neighbour, become 0. Computed per chunk, so chunking does not change it.
    inner_buffer
        With ``interior``: shrink each field by this distance (CRS units, metres in a
        projected CRS) first, so that pixels within it of the border are edge pixels too.

    Returns
    -------
    xarray.DataArray
        ``int32`` ``(y, x)`` raster named ``field_id``, dask-backed, ``0`` where no field
        (also written as the raster's nodata). Where fields overlap, the later row wins.

    Raises
    ------
    FieldsError, MissingCRSError, InvalidGeometryError
        Fields that :func:`agrivision.fields.prepare.prepare_fields` refuses, or a raster
        without a CRS.
    NoOverlapError
        No field overlaps the raster.
    GridError
        A rotated raster transform.
    """
    grid = grid_of(like)
    fields = prepare_fields(fields, grid.crs, id_column=column)
    transform, chunks = grid.affine, _chunks(like)
    codes, id_map = _codes(fields[column])
    geoms = fields.geometry.to_numpy()

    # One (geometries, codes, window transform, shape) payload per chunk, in an object array
    # chunked 1x1 so that each rasterize task receives only its own fields.
    y_edges = np.cumsum((0, *chunks[0]))
    x_edges = np.cumsum((0, *chunks[1]))
    windows = [
        rasterio.windows.Window(x_edges[j], y_edges[i], chunks[1][j], chunks[0][i])
        for i in range(len(chunks[0]))
        for j in range(len(chunks[1]))
    ]
    boxes = [box(*rasterio.windows.bounds(w, transform)) for w in windows]
    hit_box, hit_field = shapely.STRtree(geoms).query(boxes, predicate="intersects")
    if len(fields) and not len(hit_field):
        left, top = transform.c, transform.f
        right, bottom = transform @ (sum(chunks[1]), sum(chunks[0]))
        raise NoOverlapError(
            f"none of the {len(fields)} fields overlaps the raster (bounds {left:.6g}, "
            f"{bottom:.6g}, {right:.6g}, {top:.6g} in {grid.crs})",
            source="fields", fix="check that fields and imagery cover the same area and CRS",
        )  # fmt: skip
    payload = np.empty((len(chunks[0]), len(chunks[1])), dtype=object)
    for k, window in enumerate(windows):
        rows = np.sort(hit_field[hit_box == k])  # keep row order: later rows win overlaps
        payload.flat[k] = (
            geoms[rows],
            codes[rows],
            (window.height, window.width),
            rasterio.windows.transform(window, transform),
            all_touched,
            interior,
            inner_buffer,
        )
    data = da.map_blocks(
        _burn,
        da.from_array(payload, chunks=1, name=False),
        chunks=chunks,
        dtype=np.int32,
        meta=np.empty((0, 0), np.int32),
    )
    out = xr.DataArray(data, dims=("y", "x"), coords={"y": like["y"], "x": like["x"]})
    out.name = "field_id"
    if id_map is not None:
        out.attrs[ID_MAP_ATTR] = id_map
    return out.rio.write_crs(like.rio.crs).rio.write_transform(transform).rio.write_nodata(0)


def codes_to_ids(field_ids: xr.DataArray, codes: np.ndarray) -> np.ndarray:
    """Field ids of raster codes: the codes themselves, or looked up in ``field_id_map``."""
    id_map = field_ids.attrs.get(ID_MAP_ATTR)
    codes = np.asarray(codes)
    if id_map is None:
        return codes
    return np.asarray(id_map, dtype=object)[codes - 1] if len(codes) else np.asarray([], object)


def ids_to_codes(field_ids: xr.DataArray, ids: Any) -> np.ndarray:
    """Raster codes of field ids (inverse of :func:`codes_to_ids`); unknown ids give ``0``."""
    id_map = field_ids.attrs.get(ID_MAP_ATTR)
    ids = np.asarray(ids)
    if id_map is None:
        return ids.astype(np.int64)
    lookup = {v: k for k, v in enumerate(id_map, start=1)}
    return np.array([lookup.get(v, 0) for v in ids.tolist()], dtype=np.int64)


def geojson_like(geoms: np.ndarray) -> list[Any]:
    """Geometries for :func:`rasterio.features.rasterize`: (Multi)Polygons as GeoJSON-like
    dicts of coordinate lists, any other geometry as it is.

    What shapely's ``__geo_interface__`` gives, built from the flat coordinate arrays in a
    few vectorised calls instead of a Python tuple per vertex: rasterising a full tile's
    19,714 fields takes 0.89 s instead of 1.17 s, most of the difference time that holds the
    GIL. Coordinates are those of ``geoms`` (CRS units), rings closed as stored.
    """
    geoms = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(geoms)
    polygonal = np.flatnonzero(np.isin(types, (3, 6)) & ~shapely.is_empty(geoms))
    parts, part_of = shapely.get_parts(geoms[polygonal], return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    ring_lists = [
        ring.tolist()
        for ring in np.split(coords, np.searchsorted(coord_of, np.arange(1, len(rings))))
    ]
    ring_end = np.searchsorted(ring_of, np.arange(1, len(parts) + 1))
    polygons = [ring_lists[a:b] for a, b in zip(np.r_[0, ring_end[:-1]], ring_end, strict=True)]
    part_end = np.searchsorted(part_of, np.arange(1, len(polygonal) + 1))
    out = list(geoms)
    for k, a, b in zip(polygonal, np.r_[0, part_end[:-1]], part_end, strict=True):
        out[k] = (
            {"type": "Polygon", "coordinates": polygons[a]}
            if types[k] == 3
            else {"type": "MultiPolygon", "coordinates": polygons[a:b]}
        )
    return out


def _burn(payload: np.ndarray) -> np.ndarray:
    geoms, codes, shape, window_transform, all_touched, interior, inner_buffer = payload.flat[0]
    if not len(geoms):
        return np.zeros(shape, np.int32)
    out = rasterio.features.rasterize(
        zip(geojson_like(geoms), codes.tolist(), strict=True), out_shape=shape,
        transform=window_transform,
        fill=0, all_touched=all_touched, dtype=np.int32,
    )  # fmt: skip
    if interior:
        cores = shapely.buffer(geoms, -inner_buffer) if inner_buffer > 0 else geoms
        out[~_wholly_inside(out, cores, codes, window_transform)] = 0
    return out


def _wholly_inside(burnt: np.ndarray, geoms, codes: np.ndarray, transform) -> np.ndarray:
    """Pixels that ``geoms`` (one per code) cover wholly, where their own field was burnt."""
    rings = pixel_rings(geoms, transform, burnt.shape)
    ptr, cells, cov, _ = group_coverage(
        rings.cols, rings.rows, rings.ring_ptr, rings.ring_sign, rings.field_ptr, rings.bbox,
        0, 0, burnt.shape[1],
    )  # fmt: skip
    field = np.repeat(np.arange(len(geoms)), np.diff(ptr))
    # Reprojected borders that run along pixel edges leave coverage 1 - 1e-15, not 1.
    full = cov >= 1.0 - _FULL_EPS
    cells, field = cells[full], field[full]
    own = burnt.ravel()[cells] == codes[field]
    inside = np.zeros(burnt.size, bool)
    inside[cells[own]] = True
    return inside.reshape(burnt.shape)


def _codes(ids: pd.Series) -> tuple[np.ndarray, list | None]:
    if pd.api.types.is_integer_dtype(ids) and ids.min() > 0 and ids.max() <= _INT32_MAX:
        return ids.to_numpy(np.int32), None
    return np.arange(1, len(ids) + 1, dtype=np.int32), ids.tolist()


def _chunks(like: xr.DataArray | xr.Dataset) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``y`` and ``x`` chunk sizes of ``like`` (one chunk each when it is not dask-backed)."""
    sizes = like.chunksizes if like.chunks else {}
    return (
        tuple(sizes.get("y", (like.sizes["y"],))),
        tuple(sizes.get("x", (like.sizes["x"],))),
    )

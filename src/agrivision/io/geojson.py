"""RFC 7946 GeoJSON text made from batches of features, without GDAL's per-vertex writer.

GDAL's GeoJSON driver builds a JSON object per coordinate and was the slowest step of a
whole-tile report (hundreds of thousands of polygons). Here the work is vectorised per batch:
pyproj reprojects to WGS 84 (longitude, latitude), shapely rounds the coordinates to
``precision`` decimals and orients the rings (exterior counter-clockwise, holes clockwise),
GEOS serialises the geometries, and the standard library's C JSON encoder writes the
properties. Batches are made on a small thread pool (GEOS and PROJ release the GIL), in order.

What is written matches ``RFC7946=YES`` in GDAL's driver (which the tests check on the text):
no ``crs`` member, positions in degrees with at most ``precision`` decimals, NaN and missing
values as ``null``, datetimes as ISO 8601 text. Two cases are left to GDAL by the caller:
attribute columns that are neither numbers, booleans, text nor datetimes (:func:`supported`),
and geometries that cross the antimeridian, which RFC 7946 wants split
(:class:`CrossesAntimeridian` is raised while writing).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import IO

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from agrivision.runtime.threads import in_order

#: Batches serialised at once (each on its own thread); bounds memory to a few batches.
THREADS = 2
#: Rows serialised per task when a whole table is written.
ROWS_PER_TASK = 50_000
_WGS84 = "OGC:CRS84"  # WGS 84 in longitude, latitude order
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_encode_text = json.encoder.encode_basestring  # str -> JSON string literal (C)


def supported(frame: gpd.GeoDataFrame) -> bool:
    """Whether every attribute column of ``frame`` is one this writer serialises (numbers,
    booleans, text, datetimes, categories of those)."""
    geometry = frame.active_geometry_name
    return all(_column_kind(frame[c]) is not None for c in frame.columns if c != geometry)


def crosses_antimeridian(geometries: np.ndarray) -> bool:
    """Whether any geometry (in longitude, latitude) spans more than 180° of longitude, as
    one that crosses the antimeridian does once reprojected."""
    bounds = shapely.bounds(geometries)
    return bool(np.nanmax(bounds[:, 2] - bounds[:, 0], initial=0.0) > 180.0)


def write_feature_collection(
    batches: Iterable[gpd.GeoDataFrame], out: IO[str], *, name: str, precision: int
) -> None:
    """Write the batches as one RFC 7946 FeatureCollection to the text stream ``out``.

    Parameters
    ----------
    batches
        GeoDataFrames with a CRS (any; reprojected to WGS 84), all with the same columns;
        their attribute columns must be :func:`supported`.
    out
        Text stream (UTF-8) the document is written to.
    name
        The collection's ``name`` member (the layer name).
    precision
        Decimals kept per coordinate (degrees: 7 is about 1 cm).
    """
    out.write(
        '{\n"type": "FeatureCollection",\n'
        f'"name": {_ENCODE(name)},\n'
        f'"xy_coordinate_resolution": {10.0**-precision!r},\n'
        '"features": [\n'
    )
    first = True
    for text in _in_order(batches, precision):
        if text:
            out.write(text if first else ",\n" + text)
            first = False
    out.write("\n]\n}\n")


def table_batches(frame: gpd.GeoDataFrame) -> Iterator[gpd.GeoDataFrame]:
    """A whole table cut into row ranges, so that its batches run on the thread pool."""
    for start in range(0, max(len(frame), 1), ROWS_PER_TASK):
        yield frame.iloc[start : start + ROWS_PER_TASK]


def _in_order(batches: Iterable[gpd.GeoDataFrame], precision: int) -> Iterator[str]:
    """Each batch's features, serialised on a thread pool, yielded in batch order with at
    most ``THREADS`` batches in flight."""
    return in_order(functools.partial(_features, precision=precision), batches, THREADS)


def _features(frame: gpd.GeoDataFrame, precision: int) -> str:
    """The batch's features as GeoJSON text, one feature per line, comma separated."""
    if frame.empty:
        return ""
    geometry = frame.active_geometry_name
    names = [c for c in frame.columns if c != geometry]
    # One %-template per batch: the keys are encoded once, the values column by column.
    keys = ", ".join(_ENCODE(str(n)).replace("%", "%%") + ": %s" for n in names)
    template = '{ "type": "Feature", "properties": {' + keys + '}, "geometry": %s }'
    columns = [_json_values(frame[n]) for n in names]
    shapes = _geometry_texts(frame.geometry, precision)
    return ",\n".join(template % row for row in zip(*columns, shapes, strict=True))


class CrossesAntimeridian(Exception):
    """A geometry spans the antimeridian: RFC 7946 wants it split, which GDAL's writer does."""


def _geometry_texts(geometries: gpd.GeoSeries, precision: int) -> list[str]:
    """GeoJSON geometry objects: in longitude, latitude, coordinates rounded, rings
    oriented; ``null`` for missing or empty geometries."""
    to_wgs84 = pyproj.Transformer.from_crs(geometries.crs, _WGS84, always_xy=True)

    def transform(xy: np.ndarray) -> np.ndarray:  # one pass: reproject, then round
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), precision)

    lonlat = shapely.transform(geometries.to_numpy(), transform)
    if crosses_antimeridian(lonlat):
        raise CrossesAntimeridian
    oriented = shapely.orient_polygons(lonlat, exterior_cw=False)
    oriented[shapely.is_empty(oriented)] = None
    texts = shapely.to_geojson(oriented)
    return ["null" if t is None else t for t in texts.tolist()]


def _column_kind(column: pd.Series) -> str | None:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _column_kind(column.astype(dtype.categories.dtype))
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return "exact"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(column, skipna=True)
        return "exact" if inferred in ("string", "empty") else None
    return None


def _json_values(column: pd.Series) -> list[str]:
    """The column's values as JSON text (missing and non-finite values are ``null``)."""
    kind = _column_kind(column)
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(column.dtype.categories.dtype)
    missing = column.isna().to_numpy()
    if kind == "datetime":
        texts = [_ENCODE(t.isoformat()) for t in column.where(~missing, pd.NaT)]
    elif kind == "float":
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = ~np.isfinite(values)
        texts = list(map(repr, values.tolist()))
    elif pd.api.types.is_string_dtype(column.dtype) or pd.api.types.is_object_dtype(column.dtype):
        texts = list(map(_encode_text, column.astype(object).where(~missing, "").tolist()))
    else:  # booleans and integers: one C call for the whole column (no commas inside values)
        values = column.astype(object).where(~missing, None).tolist()
        texts = _ENCODE(values)[1:-1].split(", ") if values else []
    for i in np.flatnonzero(missing).tolist():
        texts[i] = "null"
    return texts

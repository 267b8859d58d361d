"""Builders for small, georeferenced, dask-chunked index rasters and pixel-aligned fields."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr
from rasterio.transform import from_origin
from shapely import box

X0, Y0, RES = 500_000.0, 5_800_000.0, 10.0  # EPSG:32633, 10 m pixels: 0.01 ha each
TRANSFORM = from_origin(X0, Y0, RES, RES)


def make_raster(values, *, chunks=16, name: str = "NDVI", times=None) -> xr.DataArray:
    """(y, x) or (time, y, x) float32 DataArray on the test grid, dask-chunked."""
    values = np.asarray(values, dtype=np.float32)
    ny, nx = values.shape[-2:]
    coords = {"y": Y0 - RES * (np.arange(ny) + 0.5), "x": X0 + RES * (np.arange(nx) + 0.5)}
    dims = ("y", "x")
    if values.ndim == 3:
        dims = ("time", "y", "x")
        coords["time"] = times if times is not None else np.arange(values.shape[0])
    chunk_spec = chunks if values.ndim == 2 or chunks == -1 else (1, chunks, chunks)
    arr = xr.DataArray(da.from_array(values, chunks=chunk_spec), dims=dims, coords=coords)
    arr.name = name
    return arr.rio.write_crs("EPSG:32633").rio.write_transform(TRANSFORM)


def pixel_box(row0: int, col0: int, row1: int, col1: int):
    """Polygon covering pixel rows row0..row1-1 and columns col0..col1-1 exactly."""
    return box(X0 + RES * col0, Y0 - RES * row1, X0 + RES * col1, Y0 - RES * row0)


def make_fields(ids, boxes) -> gpd.GeoDataFrame:
    """Fields from (row0, col0, row1, col1) pixel boxes, EPSG:32633."""
    return gpd.GeoDataFrame(
        {"field_id": list(ids)}, geometry=[pixel_box(*b) for b in boxes], crs="EPSG:32633"
    )


@pytest.fixture
def raster():
    return make_raster


@pytest.fixture
def fields():
    return make_fields


@pytest.fixture
def three_fields():
    """A: NDVI 0.8 with a 5x5 hotspot at 0.3; B: uniformly 0.5; C: 0.1 (bare); 0 between.

    Returns (ndvi values, fields, boolean masks of A, hotspot, B, C).
    """
    values = np.full((40, 60), np.nan, np.float32)
    a, hot, b, c = (np.zeros(values.shape, bool) for _ in range(4))
    a[2:22, 2:22] = True
    hot[8:13, 10:15] = True
    b[2:22, 30:50] = True
    c[25:38, 5:45] = True
    values[a], values[hot], values[b], values[c] = 0.8, 0.3, 0.5, 0.1
    values[np.isnan(values)] = 0.6  # outside every field: must still become class 0
    flds = make_fields(["A", "B", "C"], [(2, 2, 22, 22), (2, 30, 22, 50), (25, 5, 38, 45)])
    return values, flds, {"A": a, "hot": hot, "B": b, "C": c}

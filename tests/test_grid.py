"""agrivision.grid: one GeoBox per raster, the same checks for every consumer."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.transform import from_origin
from rasters import write_tif

from agrivision.errors import GridError, MissingCRSError
from agrivision.grid import check_same_grid, grid_of, metres_per_unit, transform_geometries
from agrivision.io.scene import open_scene


def raster(height=3, width=4, res=10.0, x0=500000.0, top=5800000.0, crs="EPSG:32633"):
    da = xr.DataArray(
        np.zeros((height, width), np.float32),
        dims=("y", "x"),
        coords={
            "y": top - res * (np.arange(height) + 0.5),
            "x": x0 + res * (np.arange(width) + 0.5),
        },
    )
    return da if crs is None else da.rio.write_crs(crs)


def test_grid_of_a_raster():
    grid = grid_of(raster())
    assert isinstance(grid, GeoBox)
    assert (grid.height, grid.width) == (3, 4)
    assert grid.affine == Affine(10, 0, 500000, 0, -10, 5800000)
    assert grid.crs.epsg == 32633
    assert metres_per_unit(grid) == 1.0
    assert metres_per_unit(grid_of(raster(res=0.1, x0=14.0, top=46.0, crs="EPSG:4326"))) is None
    assert grid_of(grid) is grid


def test_grid_errors():
    with pytest.raises(MissingCRSError, match="raster has no CRS"):
        grid_of(raster(crs=None))
    rotated = raster().rio.write_transform(Affine(10, 1, 500000, 0, -10, 5800000))
    rotated = rotated.drop_vars(["x", "y"])
    with pytest.raises(GridError, match="rotated"):
        grid_of(rotated)
    with pytest.raises(GridError, match="same y/x grid"):
        check_same_grid(raster(), raster(width=5))
    check_same_grid(raster(), raster())


def test_transform_geometries_pixel_to_world():
    grid = grid_of(raster())
    pixel = transform_geometries(np.array([shapely.box(1, 1, 2, 2)]), grid.affine)[0]
    assert shapely.equals(pixel, shapely.box(500010, 5799980, 500020, 5799990))
    assert pixel.area == 100.0


def test_open_scene_like_takes_the_grid(tmp_path):
    tags = {"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "04.00"}
    data = np.full((40, 40), 1500, np.uint16)
    write_tif(tmp_path / "T33_20240612_B04_10m.tif", data, transform=from_origin(600000, 5700000, 10, 10), nodata=0, tags=tags)  # fmt: skip
    scene = open_scene(tmp_path, mask="off")
    coarse = open_scene(tmp_path, resolution=20, mask="off")
    again = open_scene(tmp_path, like=coarse, mask="off")
    assert again.sizes == {"y": 20, "x": 20}
    assert grid_of(again) == grid_of(coarse)
    assert grid_of(scene).affine == Affine(10, 0, 600000, 0, -10, 5700000)

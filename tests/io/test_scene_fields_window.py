"""open_scene(fields=...): only the fields' window of the grid, on the sources' pixel edges."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from rasterio.transform import from_origin
from rasters import write_tif
from shapely.geometry import box

from agrivision.errors import NoOverlapError
from agrivision.io.scene import open_scene


def _tile(tmp_path, name, crs, origin, shape=(300, 300)):
    data = (np.arange(shape[0] * shape[1]).reshape(shape) % 5000 + 1000).astype(np.uint16)
    path = tmp_path / name
    write_tif(path, data[None], transform=from_origin(*origin, 10, 10), crs=crs, descriptions=["B04"],
              tags={"DATETIME": "2024-06-01"}, blocksize=64)  # fmt: skip
    return path, data


def test_window_of_the_fields_equals_the_full_scene_there(tmp_path) -> None:
    path, _ = _tile(tmp_path, "S2A_MSIL2A_20240601_B04.tif", "EPSG:32633", (500000, 5800000))
    fields = gpd.GeoDataFrame(
        {"field_id": [1, 2]},
        geometry=[box(500105, 5799105, 500395, 5799395), box(500605, 5798805, 500795, 5798995)],
        crs="EPSG:32633",
    )
    full = open_scene(str(path), sensor="sentinel-2-l2a", mask=False)
    part = open_scene(str(path), sensor="sentinel-2-l2a", mask=False, fields=fields)
    # columns 10.5..79.5 and rows 60.5..119.5 of the tile, widened to whole pixels plus one
    assert dict(part.sizes) == {"y": 62, "x": 72}
    assert part.rio.transform().c == 500090 and part.rio.transform().f == 5799410
    np.testing.assert_array_equal(part["red"].values, full["red"].values[59:121, 9:81])
    # fields in lon/lat: the same window, or a pixel more where the reprojected box is wider
    lonlat = open_scene(str(path), sensor="sentinel-2-l2a", mask=False, fields=fields.to_crs(4326))
    assert 62 <= lonlat.sizes["y"] <= 64 and 72 <= lonlat.sizes["x"] <= 74


def test_fields_outside_the_imagery(tmp_path) -> None:
    path, _ = _tile(tmp_path, "S2A_MSIL2A_20240601_B04.tif", "EPSG:32633", (500000, 5800000))
    far = gpd.GeoDataFrame({"field_id": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(NoOverlapError):
        open_scene(str(path), sensor="sentinel-2-l2a", mask=False, fields=far)

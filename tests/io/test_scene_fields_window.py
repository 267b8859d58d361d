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


def test_fields_across_two_utm_zones_on_one_grid(tmp_path) -> None:
    from pyproj import Transformer

    # two tiles of one date either side of 18°E (UTM 33 | 34); the fields straddle the seam
    to33 = Transformer.from_crs(4326, 32633, always_xy=True)
    to34 = Transformer.from_crs(4326, 32634, always_xy=True)
    x33, y33 = to33.transform(18.0, 52.0)
    x34, y34 = to34.transform(18.0, 52.0)
    west = tmp_path / "S2A_MSIL2A_20240601_T33_B04.tif"
    east = tmp_path / "S2A_MSIL2A_20240601_T34_B04.tif"
    shape = (200, 250)  # each tile reaches 500 m past the seam (meridians converge)
    west_origin = (round(x33 / 10) * 10 - 2000, round(y33 / 10) * 10 + 1000)
    east_origin = (round(x34 / 10) * 10 - 500, round(y34 / 10) * 10 + 1000)
    for path, crs, origin, value in (
        (west, "EPSG:32633", west_origin, 2000),
        (east, "EPSG:32634", east_origin, 3000),
    ):
        write_tif(path, np.full((1, *shape), value, np.uint16), transform=from_origin(
            *origin, 10, 10), crs=crs, descriptions=["B04"], tags={"DATETIME": "2024-06-01"},
            blocksize=64)  # fmt: skip
    fields = gpd.GeoDataFrame(
        {"field_id": [1]}, geometry=[box(17.995, 51.998, 18.012, 52.002)], crs="EPSG:4326"
    )
    scene = open_scene([str(west), str(east)], sensor="sentinel-2-l2a", mask=False, fields=fields)
    assert scene.rio.crs.to_epsg() == 32633  # the first source's zone
    red = scene["red"].values
    # 2000 DN (the first source, where both are) then 3000 DN east of the west tile's edge
    # (offset -0.1 since 2022), no gap between
    assert np.isfinite(red).all()
    x_edge = west_origin[0] + 10 * shape[1]
    columns = scene.x.values
    assert red[:, columns < x_edge] == pytest.approx(0.1, abs=1e-6)
    assert red[:, columns > x_edge] == pytest.approx(0.2, abs=1e-6)
    assert (columns < x_edge).sum() > 10 and (columns > x_edge).sum() > 10

"""Class shares per polygon and grid cells inside fields."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.affinity import translate
from shapely.geometry import Polygon, box

from agrivision.errors import ConfigError
from agrivision.fields.class_shares import (
    class_shares,
    grid_cells,
    probability_shares,
    share_columns,
)


def _raster(values: np.ndarray, nodata: int = 255) -> xr.DataArray:
    h, w = values.shape
    return (
        xr.DataArray(
            da.from_array(values, chunks=40), dims=("y", "x"),
            coords={"y": 1000 - (np.arange(h) + 0.5), "x": np.arange(w) + 0.5},
        ).rio.write_crs("EPSG:32633").rio.write_nodata(nodata)
    )  # fmt: skip


def test_shares_count_the_valid_pixels_of_each_class():
    values = np.zeros((100, 100), np.uint8)
    values[:, 50:] = 2
    values[50:, :25] = 1
    values[:10] = 255  # nodata: not counted
    fields = gpd.GeoDataFrame(
        {"field_id": [1, 2]}, geometry=[box(0, 900, 100, 1000), box(0, 900, 50, 950)],
        crs="EPSG:32633",
    )  # fmt: skip
    out = class_shares(_raster(values), fields, ["soil", "crop", "weed"])
    assert list(out.columns) == ["field_id", "valid_pixels", "soil_pct", "crop_pct", "weed_pct"]
    # field 1, by hand: 90 valid rows; soil = 40 x 50 + 50 x 25 pixels, crop 50 x 25
    assert out.loc[0, "valid_pixels"] == 9000
    np.testing.assert_allclose(out.loc[0, ["soil_pct", "crop_pct", "weed_pct"]].astype(float),
                               [100 * 3250 / 9000, 100 * 1250 / 9000, 50.0])  # fmt: skip
    np.testing.assert_allclose(out.loc[1, ["soil_pct", "crop_pct", "weed_pct"]].astype(float),
                               [50.0, 50.0, 0.0])  # fmt: skip


def test_a_half_covered_pixel_counts_half():
    values = np.zeros((10, 10), np.uint8)
    values[:, 5] = 2
    # x from 0 to 5.5: column 5 is half inside
    fields = gpd.GeoDataFrame({"field_id": [1]}, geometry=[box(0, 990, 5.5, 1000)],
                              crs="EPSG:32633")  # fmt: skip
    out = class_shares(_raster(values), fields, ["soil", "crop", "weed"])
    assert out.loc[0, "weed_pct"] == pytest.approx(100 * 5 / 55)


def _probabilities(values: np.ndarray, nodata: int = 255) -> xr.DataArray:
    _, h, w = values.shape
    return (
        xr.DataArray(
            da.from_array(values, chunks=(3, 40, 40)), dims=("class", "y", "x"),
            coords={"y": 1000 - (np.arange(h) + 0.5), "x": np.arange(w) + 0.5},
        ).rio.write_crs("EPSG:32633").rio.write_nodata(nodata)
    )  # fmt: skip


def test_probability_shares_are_mean_probabilities_not_counts_of_the_likelier_class():
    # uint8 probabilities x 254 of soil, crop, weed: the left half soil for sure; the right
    # half a plant the model is unsure of (weed 0.6, crop 0.4): weed wins every pixel there
    p = np.zeros((3, 100, 100), np.uint8)
    p[0, :, :50] = 254
    p[1, :, 50:], p[2, :, 50:] = 102, 152  # 0.4016 and 0.5984 (rounded as the segmenter does)
    p[:, :10] = 255  # nodata: not counted
    fields = gpd.GeoDataFrame({"field_id": [1]}, geometry=[box(0, 900, 100, 1000)],
                              crs="EPSG:32633")  # fmt: skip
    out = probability_shares(_probabilities(p), fields, ["soil", "crop", "weed"])
    assert list(out.columns) == ["field_id", "valid_pixels", "soil_pct", "crop_pct", "weed_pct"]
    assert out.loc[0, "valid_pixels"] == 9000
    # by hand: half the pixels soil (1.0), half crop 102/254 and weed 152/254
    np.testing.assert_allclose(out.loc[0, ["soil_pct", "crop_pct", "weed_pct"]].astype(float),
                               [50.0, 50 * 102 / 254, 50 * 152 / 254])  # fmt: skip
    # counting the likelier class instead gives weed 50 %, crop 0 %
    likelier = np.where(p[0] == 255, 255, p.argmax(0)).astype(np.uint8)
    counted = class_shares(_raster(likelier), fields, ["soil", "crop", "weed"])
    assert counted.loc[0, ["crop_pct", "weed_pct"]].tolist() == [0.0, 50.0]
    assert out.loc[0, "weed_pct"] == pytest.approx(29.92, abs=0.01)


def test_probability_shares_add_up_to_100_although_rounded_probabilities_do_not():
    p = np.zeros((3, 10, 10), np.uint8)
    p[0], p[1], p[2] = 85, 85, 85  # 3 x 85 = 255 > 254: each 1/3 after rounding
    p[:, :, 5:] = [[[100]], [[50]], [[103]]]  # sums to 253
    fields = gpd.GeoDataFrame({"field_id": [7]}, geometry=[box(0, 990, 5.5, 1000)],
                              crs="EPSG:32633")  # fmt: skip
    out = probability_shares(_probabilities(p), fields, ["soil", "crop", "weed"])
    shares = out.loc[0, ["soil_pct", "crop_pct", "weed_pct"]].astype(float).to_numpy()
    assert shares.sum() == pytest.approx(100.0)
    # column 5 half inside: weights 5 x 10 pixels and 0.5 x 10
    means = (5 * np.array([85, 85, 85]) + 0.5 * np.array([100, 50, 103])) / 5.5
    np.testing.assert_allclose(shares, 100 * means / means.sum())
    with pytest.raises(ConfigError, match="3 probability layers for 2 class names"):
        probability_shares(_probabilities(p), fields, ["soil", "weed"])


def test_share_columns_avoid_taken_names_and_duplicates():
    assert share_columns(["Soil", "crop", "Weed / grass"]) == [
        "soil_pct", "crop_pct", "weed_grass_pct",
    ]  # fmt: skip
    assert share_columns(["healthy", "weed"], taken={"healthy_pct"}) == [
        "model_healthy_pct", "weed_pct",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="duplicate columns"):
        share_columns(["Weed", "weed"])


def test_grid_cells_are_squares_on_the_crs_grid_cut_by_the_field():
    # an L-shaped field from (3, 2) to (23, 12) m off a point on the central meridian (where
    # UTM's scale is 0.9996, so the geodesic areas are those of the plane)
    x0, y0 = 500000, 5000000
    field = translate(Polygon([(3, 2), (23, 2), (23, 7), (13, 7), (13, 12), (3, 12)]), x0, y0)
    fields = gpd.GeoDataFrame({"field_id": ["a"]}, geometry=[field], crs="EPSG:32633")
    cells = grid_cells(fields, 10)
    assert list(cells.columns) == ["cell_id", "field_id", "row", "col", "area_ha", "geometry"]
    # cells (col, row) on the 10 m grid: x 0-10, 10-20, 20-30; y 0-10, 10-20 (+ the offset)
    got = {(int(c) - x0 // 10, int(r) - y0 // 10): g.area
           for c, r, g in zip(cells["col"], cells["row"], cells.geometry, strict=True)}  # fmt: skip
    assert got == pytest.approx({(0, 0): 7 * 8, (1, 0): 10 * 5 + 3 * 3, (2, 0): 3 * 5,
                                 (0, 1): 7 * 2, (1, 1): 3 * 2})  # fmt: skip
    assert cells.geometry.area.sum() == pytest.approx(field.area)
    assert cells["cell_id"].tolist() == list(range(1, 6))
    np.testing.assert_allclose(cells["area_ha"], cells.geometry.area / 1e4, rtol=1e-3)


def test_grid_cells_need_metres():
    fields = gpd.GeoDataFrame({"field_id": [1]}, geometry=[box(10, 50, 10.1, 50.1)],
                              crs="EPSG:4326")  # fmt: skip
    with pytest.raises(ConfigError, match="projected CRS"):
        grid_cells(fields, 10)
    with pytest.raises(ConfigError, match="> 0"):
        grid_cells(fields.to_crs("EPSG:32632"), 0)

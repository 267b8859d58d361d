"""The field table's verdicts: support before any status, hotspots need a contiguous patch."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr
from rasterio.transform import from_origin
from rasters import geodesic_ha
from shapely import box

from agrivision.fields.table import INSUFFICIENT, field_table
from agrivision.health import classify, zones
from agrivision.health.schema import DEFAULT_SCHEMA
from agrivision.report.config import ReportConfig

X0, Y0, RES = 500_000.0, 5_800_000.0, 10.0  # EPSG:32633, 10 m pixels: 0.01 ha each
# ... on the map; on the ellipsoid (geodesic areas) 0.08 % more at the central meridian.
PIXEL_HA = geodesic_ha(0.01, "EPSG:32633", X0, Y0)
HEALTHY, ANOMALY = DEFAULT_SCHEMA.code("healthy"), DEFAULT_SCHEMA.code("anomaly")
STRESSED = DEFAULT_SCHEMA.code("stressed")


def on_grid(values: np.ndarray, name: str) -> xr.DataArray:
    ny, nx = values.shape
    coords = {"y": Y0 - RES * (np.arange(ny) + 0.5), "x": X0 + RES * (np.arange(nx) + 0.5)}
    arr = xr.DataArray(da.from_array(values, chunks=16), dims=("y", "x"), coords=coords, name=name)
    return arr.rio.write_crs("EPSG:32633").rio.write_transform(from_origin(X0, Y0, RES, RES))


def fields_of(boxes: dict) -> gpd.GeoDataFrame:
    """Fields from ``{id: (row0, col0, row1, col1)}`` pixel boxes."""
    geoms = [box(X0 + RES * c0, Y0 - RES * r1, X0 + RES * c1, Y0 - RES * r0)
             for r0, c0, r1, c1 in boxes.values()]  # fmt: skip
    return gpd.GeoDataFrame({"field_id": list(boxes)}, geometry=geoms, crs="EPSG:32633")


def table_of(ndvi: np.ndarray, classes: np.ndarray, fields, **problems):
    indices = xr.Dataset({"NDVI": on_grid(ndvi.astype(np.float32), "NDVI")})
    config = ReportConfig(problems=problems)
    table, _ = field_table(fields, indices, on_grid(classes.astype(np.uint8), "c"), config=config)
    return table.set_index("field_id")


def test_a_field_below_the_pixel_minimum_is_insufficient_data_with_no_hotspot_or_zones():
    ndvi = np.full((40, 60), 0.8)
    ndvi[4:7, 4:7] = ndvi[20:24, 20:24] = 0.4  # a 3 x 3 and a 4 x 4 patch far below 0.8
    flds = fields_of({"tiny": (3, 3, 8, 8), "big": (15, 15, 35, 35), "away": (0, 100, 5, 105)})
    classes = classify(xr.Dataset({"NDVI": on_grid(ndvi.astype(np.float32), "NDVI")}), flds)
    cls = classes.values
    assert (cls[4:7, 4:7] != ANOMALY).all()  # 25 pixels: no z, no anomaly
    assert (cls[20:24, 20:24] == ANOMALY).all()  # 400 pixels: the patch is found
    table = table_of(ndvi, cls, flds)
    tiny, big, away = table.loc["tiny"], table.loc["big"], table.loc["away"]
    assert tiny["status"] == INSUFFICIENT and tiny["status_reason"] == "25 usable pixels < 30"
    assert not tiny["hotspot"]
    # no class shares from 25 pixels (the classes exist: they are just not a verdict)
    assert tiny[["healthy_pct", "stressed_pct", "anomaly_pct", "problem_area_ha"]].isna().all()
    assert away[["healthy_ha", "bare_ha"]].isna().all() and big["healthy_pct"] > 90
    assert away["status"] == INSUFFICIENT and away["status_reason"] == "outside the scene"
    assert big["hotspot"] and big["status"] == "problem"
    assert big["anomaly_patch_ha"] == pytest.approx(16 * PIXEL_HA, rel=1e-6)
    assert big["status_reason"] == "anomaly patch 0.16 ha >= 0.05 ha"
    zoned = zones(on_grid(ndvi.astype(np.float32), "NDVI"), flds.iloc[:2], n=2)
    assert set(zoned["field_id"]) == {"big"}
    # the same small field is judged once the minimum allows it: its patch is stressed
    judged = table_of(ndvi, cls, flds, min_pixels=25).loc["tiny"]
    assert (judged["status"], judged["status_reason"]) == ("problem", "problem share 36 % >= 30 %")


def test_low_valid_data_is_insufficient_with_its_fraction():
    ndvi = np.full((40, 60), 0.8)
    ndvi[10:30, 10:27] = np.nan  # 340 of the 400 pixels under a cloud
    flds = fields_of({"cloudy": (10, 10, 30, 30)})
    table = table_of(ndvi, np.where(np.isnan(ndvi), 0, HEALTHY), flds)
    assert table.loc["cloudy", "status"] == INSUFFICIENT
    assert table.loc["cloudy", "status_reason"] == "valid fraction 0.15 < 0.5"


def test_isolated_anomaly_pixels_are_no_hotspot_one_patch_is():
    ndvi = np.full((40, 60), 0.8)
    scatter = np.full((40, 60), HEALTHY)
    scatter[5:35:3, 5:35:3] = ANOMALY  # 100 isolated pixels: 11 % of the 900-pixel field
    patch = np.full((40, 60), HEALTHY)
    patch[10:14, 10:14] = ANOMALY  # one 4 x 4 patch: 0.16 ha, 1.8 %
    flds = fields_of({"f": (5, 5, 35, 35)})
    scattered = table_of(ndvi, scatter, flds).loc["f"]
    assert scattered["anomaly_pct"] == pytest.approx(100 * 100 / 900)
    assert scattered["anomaly_patch_ha"] == pytest.approx(PIXEL_HA, rel=1e-6)
    assert not scattered["hotspot"]
    assert (
        scattered["status"] == "watch"
        and scattered["status_reason"] == "problem share 11 % >= 10 %"
    )
    patched = table_of(ndvi, patch, flds).loc["f"]
    assert (
        patched["anomaly_patch_ha"] == pytest.approx(16 * PIXEL_HA, rel=1e-6) and patched["hotspot"]
    )
    assert patched["status"] == "problem"
    # the area, not the share, decides: the same patch under a larger minimum is no hotspot
    assert not table_of(ndvi, patch, flds, hotspot_min_ha=0.2).loc["f", "hotspot"]


def test_a_whole_crop_below_the_stress_threshold_is_no_problem_a_stressed_field_is():
    # Six ripening rapeseed fields, wholly "stressed" by the absolute NDVI threshold, and six
    # wheat fields of which one has a stressed patch over 40 % of it: 8 x 8 pixels each.
    ndvi = np.full((20, 120), 0.8)
    classes = np.zeros((20, 120), int)
    boxes, crops = {}, []
    for i in range(12):
        r0, c0 = 2, 2 + 10 * i
        boxes[f"f{i}"] = (r0, c0, r0 + 8, c0 + 8)
        crops.append("rapeseed" if i < 6 else "wheat")
        ripe = i < 6
        ndvi[r0 : r0 + 8, c0 : c0 + 8] = 0.40 if ripe else 0.80
        classes[r0 : r0 + 8, c0 : c0 + 8] = STRESSED if ripe else HEALTHY
    classes[2:10, 112:118] = STRESSED  # field f11 (columns 112..119): 6 of its 8 columns
    flds = fields_of(boxes).assign(crop=crops)
    table = table_of(ndvi, classes, flds)
    rape, wheat = table.iloc[:6], table.iloc[6:]
    assert (rape["stressed_pct"] == 100).all() and (rape["stressed_peer_pct"] == 100).all()
    assert (rape["status"] == "good").all()
    assert wheat.loc["f11", "stressed_pct"] == 75 and (wheat["stressed_peer_pct"] == 0).all()
    assert wheat.loc["f11", "status"] == "problem"
    assert wheat.loc["f11", "status_reason"] == (
        "problem share 75 % (stressed beyond its crop's 0 %) >= 30 %"
    )
    assert (wheat.drop("f11")["status"] == "good").all()
    # a wheat field uniformly weaker than the other wheat: watch by its peer z, not by class
    weak = ndvi.copy()
    weak[2:10, 62:70] = 0.70  # field f6: 0.1 NDVI below the wheat median, peer z -5
    judged = table_of(weak, classes, flds).loc["f6"]
    assert judged["peer_z"] == pytest.approx(-0.1 / 0.02, rel=1e-4)
    assert (judged["status"], judged["status_reason"]) == (
        "watch",
        "NDVI mean far below its crop (peer z -5.0 < -3)",
    )
    # without crops the same stressed share is judged whole: every rapeseed field is a problem
    blind = table_of(ndvi, classes, flds.drop(columns="crop"))
    assert (blind.iloc[:6]["status"] == "problem").all()
    assert blind["stressed_peer_pct"].isna().all()

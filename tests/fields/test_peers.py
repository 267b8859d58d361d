"""Peer groups by crop: robust ``peer_z``, fall-backs to all fields, crop-relative decline."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr
from rasterio.transform import from_origin
from scipy.stats import median_abs_deviation
from shapely import box

from agrivision.errors import FieldsError
from agrivision.fields.config import TimeSeriesConfig
from agrivision.fields.peers import MAD_FLOOR, PeersWarning, peer_groups, relative_decline
from agrivision.fields.table import field_table
from agrivision.report.config import ReportConfig

X0, Y0, RES = 500_000.0, 5_800_000.0, 10.0
CONFIG = TimeSeriesConfig()


def table(ndvi, crops=None, *, valid=None, outside=None) -> pd.DataFrame:
    n = len(ndvi)
    out = pd.DataFrame(
        {
            "field_id": np.arange(1, n + 1),
            "valid_fraction": valid if valid is not None else [1.0] * n,
            "outside_scene": outside if outside is not None else [False] * n,
            "ndvi_mean": ndvi,
        }
    )
    if crops is not None:
        out.insert(1, "crop", crops)
    return out


def test_peer_z_is_the_robust_z_within_the_crop():
    wheat = [0.50, 0.60, 0.62, 0.64, 0.66, 0.90]
    t = table([*wheat, 0.3, 0.35, 0.4], ["wheat"] * 6 + ["maize"] * 3)
    with pytest.warns(PeersWarning, match=r"1 crops have fewer than 5 .*maize \(3\)"):
        peers = peer_groups(t, CONFIG)
    w = np.array(wheat)
    expected = (w - np.median(w)) / median_abs_deviation(w, scale="normal")
    np.testing.assert_allclose(peers["peer_z"][:6], expected, rtol=1e-5)
    assert peers["peer_z"].iloc[5] == pytest.approx(0.27 / (1.4826 * 0.03))  # 6.07
    assert (peers["peer_group"][:6] == "wheat").all() and (peers["peer_n"][:6] == 6).all()
    # three maize fields are too few: compared with all nine fields, and say so
    every = np.array([*wheat, 0.3, 0.35, 0.4])
    ref = (every[6:] - np.median(every)) / median_abs_deviation(every, scale="normal")
    assert (peers["peer_group"][6:] == "all fields").all() and (peers["peer_n"][6:] == 9).all()
    np.testing.assert_allclose(peers["peer_z"][6:], ref, rtol=1e-5)


def test_mad_floor_keeps_near_identical_fields_from_large_z():
    t = table([0.70] * 5 + [0.71], ["rye"] * 6)
    peers = peer_groups(t, CONFIG)
    assert peers["peer_z"].iloc[5] == pytest.approx(0.01 / MAD_FLOOR)  # 0.5, not infinite
    assert peers["peer_z"].iloc[0] == 0.0


def test_fields_without_enough_data_get_no_peer_z_and_do_not_count():
    t = table(
        [0.6, 0.6, 0.6, 0.6, 0.6, 0.1, np.nan],
        ["oats"] * 7,
        valid=[1, 1, 1, 1, 1, 0.2, 0.0],
    )
    t.loc[6, "outside_scene"] = True
    peers = peer_groups(t, CONFIG)
    assert peers["peer_z"][:5].tolist() == [0.0] * 5
    assert peers["peer_z"][5:].isna().all()
    assert (peers["peer_n"] == 5).all() and (peers["peer_group"] == "oats").all()


def test_without_a_crop_column_every_field_is_compared_with_all_fields():
    with pytest.warns(PeersWarning, match="no crop column"):
        peers = peer_groups(table([0.5, 0.6, 0.7, 0.8, 0.9]), CONFIG)
    assert (peers["peer_group"] == "all fields").all() and (peers["peer_n"] == 5).all()
    # median 0.7, MAD 0.1
    expected = np.array([-0.2, -0.1, 0, 0.1, 0.2]) / (1.4826 * 0.1)
    np.testing.assert_allclose(peers["peer_z"], expected, rtol=1e-9, atol=1e-12)
    # fewer than five fields in all: nobody to compare with
    with pytest.warns(PeersWarning):
        few = peer_groups(table([0.5, 0.6, 0.7]), CONFIG)
    assert few["peer_z"].isna().all() and (few["peer_n"] == 3).all()


# --------------------------------------------------------------------------- the season


# The season's fields are 16 pixels: below the default support (problems.min_pixels).
SMALL_FIELDS = ReportConfig(problems={"min_pixels": 10})


def season(day0: list[float], day1: list[float], crops: list[str] | None):
    """Fields of 4x4 pixels in a row (1 px gaps), NDVI constant per field on two dates."""
    n = len(day0)
    ny, nx = 4, 5 * n
    values = np.full((2, ny, nx), 0.1, np.float32)
    geoms = []
    for i, (a, b) in enumerate(zip(day0, day1, strict=True)):
        values[0, :, 5 * i : 5 * i + 4], values[1, :, 5 * i : 5 * i + 4] = a, b
        geoms.append(box(X0 + RES * 5 * i, Y0 - RES * ny, X0 + RES * (5 * i + 4), Y0))
    coords = {
        "time": np.array(["2024-06-01", "2024-07-15"], dtype="datetime64[ns]"),
        "y": Y0 - RES * (np.arange(ny) + 0.5),
        "x": X0 + RES * (np.arange(nx) + 0.5),
    }
    ndvi = xr.DataArray(da.from_array(values, chunks=(1, 4, 8)), dims=("time", "y", "x"),
                        coords=coords, name="NDVI")  # fmt: skip
    ndvi = ndvi.rio.write_crs("EPSG:32633").rio.write_transform(from_origin(X0, Y0, RES, RES))
    # every field pixel classified (healthy): usable for the support count
    classes = xr.where(ndvi.isel(time=-1) != np.float32(0.1), np.uint8(1), np.uint8(0))
    classes = classes.rio.write_crs("EPSG:32633").rio.write_transform(ndvi.rio.transform())
    attrs = {"field_id": np.arange(1, n + 1)} | ({"crop": crops} if crops else {})
    fields = gpd.GeoDataFrame(attrs, geometry=geoms, crs="EPSG:32633")
    return fields, xr.Dataset({"NDVI": ndvi}), classes


def test_a_whole_crop_ripening_is_not_decline_but_a_failing_field_is():
    # crop A (fields 1-5) ripens: NDVI falls 0.3; crop B (6-10) stays, but field 10 fails.
    day0 = [0.8] * 5 + [0.7] * 5
    day1 = [0.5] * 5 + [0.7] * 4 + [0.4]
    fields, indices, classes = season(day0, day1, ["A"] * 5 + ["B"] * 5)
    out, series = field_table(fields, indices, classes, config=SMALL_FIELDS)
    out = out.set_index("field_id")
    assert out.index[out["declining"]].tolist() == [10]
    np.testing.assert_allclose(out["ndvi_change"], np.array(day1) - np.array(day0), atol=1e-6)
    np.testing.assert_allclose(out["ndvi_peer_change"], [-0.3] * 5 + [0.0] * 5, atol=1e-6)
    assert out["peer_group"].tolist() == ["A"] * 5 + ["B"] * 5
    assert out.loc[10, "peer_z"] == pytest.approx((0.4 - 0.7) / MAD_FLOOR, rel=1e-5)
    assert out.loc[[1, 10], "status"].tolist() == ["good", "watch"]
    assert out["crop"].tolist() == ["A"] * 5 + ["B"] * 5
    assert not series["cloud_suspect"].any()


def test_without_crops_the_scene_is_the_reference():
    # The same season without a crop column: most fields fall 0.3, so that is the norm and
    # the failing B field falls no more than the scene (documented behaviour).
    day0 = [0.8] * 5 + [0.7] * 5
    day1 = [0.5] * 5 + [0.7] * 4 + [0.4]
    fields, indices, classes = season(day0, day1, None)
    with pytest.warns(PeersWarning, match="no crop column"):
        out, _ = field_table(fields, indices, classes, config=SMALL_FIELDS)
    assert (out["peer_group"] == "all fields").all()
    np.testing.assert_allclose(out["ndvi_peer_change"], -0.3, atol=1e-6)
    assert not out["declining"].any()


def test_too_few_fields_fall_back_to_the_absolute_change():
    fields, indices, classes = season([0.75, 0.8], [0.55, 0.8], None)
    with pytest.warns(PeersWarning):
        out, _ = field_table(fields, indices, classes, config=SMALL_FIELDS)
    assert out["ndvi_peer_change"].isna().all()
    assert out["declining"].tolist() == [True, False]


def test_a_named_crop_column_must_exist():
    fields, indices, classes = season([0.8] * 2, [0.8] * 2, ["A", "B"])
    config = ReportConfig(fields={"crop_column": "gewas"})
    with pytest.raises(FieldsError, match=r"no crop column 'gewas' \(columns: crop\)"):
        field_table(fields, indices, classes, config=config)


def test_a_field_cloudy_on_the_last_date_keeps_its_change_from_earlier_clear_dates():
    t = table([0.7] * 5 + [np.nan], ["A"] * 6, valid=[1.0] * 5 + [0.1])
    t = t.join(peer_groups(t, CONFIG))  # five observed "A" fields: a group of its own
    assert t["peer_group"].tolist() == ["A"] * 6 and np.isnan(t["peer_z"].iloc[5])
    change = pd.DataFrame(
        {
            "field_id": np.arange(1, 7),
            "ndvi_change": [-0.30, -0.31, -0.29, -0.30, -0.32, -0.45],
            "previous_date": ["2024-06-01"] * 6,
            "last_date": ["2024-06-21"] * 6,
        }
    )
    out = relative_decline(t, change, CONFIG)
    assert out["ndvi_peer_change"].iloc[5] == pytest.approx(-0.305)  # median of all six
    assert out["declining"].tolist() == [False] * 5 + [True]

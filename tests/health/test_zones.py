"""Management zones: quantile bands, k-means modes, majority smoothing, polygons."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from rasters import geodesic_ha

from agrivision.errors import ConfigError, GridError
from agrivision.fields.rasterize import field_raster
from agrivision.health import zone_raster, zones
from agrivision.health.zones import zone_batches

# Areas are geodesic: a 10 m pixel at the zone's central meridian is 0.08 % larger.
PIXEL_HA = geodesic_ha(0.01, "EPSG:32633", 500_000.0, 5_800_000.0)


def gradient(nx=60, ny=40):
    """NDVI rising 0.01 per column from 0.2: a left-to-right gradient."""
    return np.tile(0.2 + 0.01 * np.arange(nx, dtype=np.float32), (ny, 1))


def test_quantile_zones_are_equal_vertical_bands(raster, fields):
    ndvi = raster(gradient(), chunks=16)
    flds = fields([7, 9], [(5, 5, 35, 35), (10, 40, 20, 58)])  # 30 and 18 columns wide
    zr = zone_raster(ndvi, flds, n=3)
    assert isinstance(zr.data, da.Array) and zr.dtype == np.uint8 and zr.rio.nodata == 0
    v = zr.values
    field7 = v[5:35, 5:35]
    assert (field7 == field7[0]).all()  # vertical bands: every row alike
    np.testing.assert_array_equal(field7[0], np.repeat([1, 2, 3], 10))
    np.testing.assert_array_equal(v[15, 40:58], np.repeat([1, 2, 3], 6))
    assert (v[:5] == 0).all() and (v[:, 35:40] == 0).all()

    out = zones(ndvi, flds, n=3)
    assert list(out.columns) == ["field_id", "zone", "mean_NDVI", "area_ha", "geometry"]
    assert out.crs.to_epsg() == 32633
    for field_id, rows, cols in [(7, 30, 30), (9, 10, 18)]:
        part = out[out.field_id == field_id].sort_values("zone")
        assert part.zone.tolist() == [1, 2, 3]
        band = rows * cols / 3 * PIXEL_HA
        assert part.area_ha.to_numpy() == pytest.approx([band] * 3, abs=rows * PIXEL_HA)
        assert part.area_ha.sum() == pytest.approx(rows * cols * PIXEL_HA)
        assert np.all(np.diff(part.mean_NDVI.to_numpy()) > 0)
    first = out[(out.field_id == 7) & (out.zone == 1)].mean_NDVI.item()
    assert first == pytest.approx(0.2 + 0.01 * np.arange(5, 15).mean(), abs=1e-6)


def test_kmeans_finds_the_two_modes(raster, fields):
    rng = np.random.default_rng(0)
    values = rng.normal(0.8, 0.03, (30, 40)).astype(np.float32)
    low = rng.random(values.shape) < 0.35  # scattered low-vigour pixels, bimodal field
    values[low] = rng.normal(0.3, 0.03, low.sum())
    ndvi = raster(values, name="NDVI")
    flds = fields(["f"], [(0, 0, 30, 40)])
    v = zone_raster(ndvi, flds, n=2, method="kmeans").values
    np.testing.assert_array_equal(v == 1, low)
    out = zones(ndvi, flds, n=2, method="kmeans")
    means = out.groupby("zone").mean_NDVI.first()
    assert means[1] == pytest.approx(values[low].mean(), abs=1e-6)
    assert means[1] == pytest.approx(0.3, abs=0.01) and means[2] == pytest.approx(0.8, abs=0.01)
    assert out.groupby("zone").area_ha.sum()[1] == pytest.approx(low.sum() * PIXEL_HA)


def brute_majority(zone: np.ndarray, fid: np.ndarray, size: int) -> np.ndarray:
    """Reference: majority among same-field pixels, window offsets -(size//2)..size-size//2-1."""
    out = zone.copy()
    lo, hi = size // 2, size - size // 2
    for r, c in zip(*np.nonzero(zone), strict=True):
        win = (slice(max(r - lo, 0), r + hi), slice(max(c - lo, 0), c + hi))
        same = (fid[win] == fid[r, c]) & (zone[win] > 0)
        counts = np.bincount(zone[win][same], minlength=zone.max() + 1)
        best = np.flatnonzero(counts == counts.max())
        out[r, c] = zone[r, c] if zone[r, c] in best else best[0]
    return out


@pytest.mark.parametrize("size", [3, 4, 5])
def test_smoothing_is_a_same_field_majority_and_chunk_invariant(raster, fields, size):
    rng = np.random.default_rng(size)
    values = (gradient(40, 30) + rng.normal(0, 0.05, (30, 40))).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    flds = fields([1, 2, 3], [(0, 0, 30, 20), (0, 20, 15, 40), (15, 20, 30, 40)])  # touching
    ndvi = raster(values, chunks=7)
    raw = zone_raster(ndvi, flds, n=4).values
    fid = field_raster(flds, ndvi).values
    smoothed = zone_raster(ndvi, flds, n=4, smooth=size).values
    np.testing.assert_array_equal(smoothed, brute_majority(raw, fid, size))
    whole = zone_raster(raster(values, chunks=-1), flds, n=4, smooth=size).values
    np.testing.assert_array_equal(smoothed, whole)
    assert (smoothed != raw).sum() > 0


def test_smoothing_removes_salt_and_pepper(raster, fields):
    values = gradient(40, 20)
    values[5, 3] = values[12, 33] = 0.99  # isolated bright pixels in the low/high bands
    flds = fields([1], [(0, 0, 20, 40)])
    ndvi = raster(values)
    v = zone_raster(ndvi, flds, n=2, smooth=3).values
    np.testing.assert_array_equal(v, np.repeat([[1, 2]], 20, axis=0).repeat(20, axis=1))


def test_zones_need_one_date_and_valid_settings(raster, fields):
    flds = fields([1], [(0, 0, 10, 10)])
    series = raster(np.zeros((2, 10, 10)), times=[0, 1])
    with pytest.raises(GridError, match="select a date"):
        zones(series, flds)
    for bad in ({"n": 1}, {"method": "jenks"}, {"smooth": -1}):
        with pytest.raises(ConfigError, match=r"n in 2\.\.254"):
            zone_raster(raster(gradient(10, 10)), flds, **bad)


def test_uniform_field_and_min_area(raster, fields):
    values = np.full((20, 20), 0.6, np.float32)
    values[:, 15:] = 0.3
    ndvi = raster(values)
    flds = fields([1], [(0, 0, 20, 20)])
    out = zones(ndvi, flds, n=3, method="kmeans")
    assert sorted(out.zone) == [1, 2]  # two distinct values: the top zone stays empty
    kept = zones(ndvi, flds, n=2, method="kmeans", min_area_ha=1.5)
    assert kept.zone.tolist() == [2] and kept.area_ha.item() == pytest.approx(300 * PIXEL_HA)


def test_zone_batches_hold_each_fields_zones_as_zones_does(raster, fields):
    rng = np.random.default_rng(1)
    values = (gradient(60, 48) + rng.normal(0, 0.05, (48, 60))).astype(np.float32)
    ndvi = raster(values, chunks=8)
    flds = fields(
        [3, 1, 2, 4],
        [(1, 1, 22, 29), (1, 31, 45, 58), (24, 2, 46, 28), (26, 29, 30, 30)],  # rows 1..46
    )
    # min_pixels=1: field 4 (4 pixels) keeps its zones, so that it ends in the first strip
    whole = zones(ndvi, flds, n=3, smooth=3, min_pixels=1)
    batches = list(zone_batches(ndvi, flds, n=3, smooth=3, rows=16, min_pixels=1))
    assert len(batches) > 1
    assert [b.field_id.unique().tolist() for b in batches] == [[3, 4], [1, 2]]  # by strip
    joined = pd.concat(batches).sort_values("field_id", kind="stable", key=lambda s: s.map(
        {fid: k for k, fid in enumerate(flds.field_id)}
    ))  # fmt: skip
    pd.testing.assert_frame_equal(joined.reset_index(drop=True), whole.reset_index(drop=True))

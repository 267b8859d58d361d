"""Per-field histogram statistics against numpy, robust z-scores and hotspot shares."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agrivision.fields.rasterize import field_raster
from agrivision.health.anomaly import (
    MAD_TO_SIGMA,
    field_histograms,
    field_statistics,
    hotspot_share,
    robust_z,
)

TOL = 0.001  # one histogram bin of the default 2000 bins over (-1, 1)


def numpy_stats(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)].astype(np.float64)
    med = np.median(v)
    return {
        "count": v.size, "mean": v.mean(), "median": med, "mad": np.median(np.abs(v - med)),
        "p10": np.quantile(v, 0.1), "p90": np.quantile(v, 0.9),
    }  # fmt: skip


def noisy_fields(rng, raster, fields, shape=(60, 80), chunks=16):
    """Nine fields of different size with normal NDVI, 5 % NaN; returns index, ids, masks."""
    values = rng.normal(0.55, 0.12, shape).astype(np.float32)
    values[rng.random(shape) < 0.05] = np.nan
    boxes = [(r, c, r + h, c + w) for r, c, h, w in
             [(0, 0, 10, 12), (12, 0, 30, 5), (0, 20, 3, 3), (5, 40, 50, 35), (45, 0, 15, 38),
              (20, 10, 20, 25), (0, 30, 4, 9), (59, 79, 1, 1), (42, 12, 2, 3)]]  # fmt: skip
    flds = fields([f"f{i}" for i in range(len(boxes))], boxes)
    index = raster(values, chunks=chunks)
    fid = field_raster(flds, index)
    return values, index, fid


@pytest.mark.parametrize("chunks", [16, -1])
def test_statistics_match_numpy_within_one_bin(raster, fields, chunks):
    values, index, fid = noisy_fields(np.random.default_rng(1), raster, fields, chunks=chunks)
    stats = field_statistics(index, fid)
    codes = fid.values
    assert list(stats.columns) == ["field_id", "count", "mean", "median", "mad", "p10", "p90"]
    assert len(stats) == 9
    for row in stats.itertuples():
        expected = numpy_stats(values[codes == int(row.field_id[1:]) + 1])
        assert row.count == expected["count"]
        assert row.mean == pytest.approx(expected["mean"], abs=1e-6)
        for key in ("median", "mad", "p10", "p90"):
            assert abs(getattr(row, key) - expected[key]) <= TOL, (row.field_id, key)


def test_many_fields_per_chunk_and_sparse_huge_ids(raster, fields):
    """100 2x2 fields with ids 10^9 apart: sorted (not dense) per-chunk reductions."""
    rng = np.random.default_rng(2)
    values = rng.uniform(-0.2, 0.9, (20, 20)).astype(np.float32)
    boxes = [(2 * (k // 10), 2 * (k % 10), 2 * (k // 10) + 2, 2 * (k % 10) + 2) for k in range(100)]
    ids = [1 + 10**9 * k for k in range(100)]
    flds = fields(ids, boxes).assign(field_id=lambda d: d.field_id.astype("int64"))
    index = raster(values, chunks=-1)
    fid = field_raster(flds, index)
    stats = field_statistics(index, fid).set_index("field_id")
    assert len(stats) == 100
    for k, (r0, c0, r1, c1) in enumerate(boxes):
        expected = numpy_stats(values[r0:r1, c0:c1])
        assert abs(stats.loc[ids[k], "median"] - expected["median"]) <= TOL
        assert abs(stats.loc[ids[k], "mad"] - expected["mad"]) <= TOL


def test_time_series_gives_one_row_per_field_and_date(raster, fields):
    rng = np.random.default_rng(3)
    values = np.stack([rng.normal(m, 0.05, (30, 30)) for m in (0.3, 0.6, 0.8)])
    values[1, :5] = np.nan  # part of field 1 is cloudy on date 1
    values[2, :, 15:] = np.nan  # field 2 fully cloudy on date 2: no row
    dates = pd.to_datetime(["2024-05-01", "2024-06-01", "2024-07-01"])
    index = raster(values, chunks=8, times=dates)
    flds = fields([1, 2], [(0, 0, 30, 15), (0, 15, 30, 30)])
    fid = field_raster(flds, index)
    stats = field_statistics(index, fid)
    assert list(stats.columns[:2]) == ["field_id", "time"]
    assert len(stats) == 5
    for row in stats.itertuples():
        t = list(dates).index(row.time)
        part = values[t][:, :15] if row.field_id == 1 else values[t][:, 15:]
        expected = numpy_stats(part)
        assert row.count == expected["count"]
        assert abs(row.median - expected["median"]) <= TOL
        assert abs(row.mad - expected["mad"]) <= TOL


def test_constant_field_and_values_outside_the_range(raster, fields):
    values = np.full((10, 20), 0.8, np.float32)
    values[:, 10:] = 1.5  # outside (-1, 1): counted in the top bin, mean stays exact
    index = raster(values)
    fid = field_raster(fields([1, 2], [(0, 0, 10, 10), (0, 10, 10, 20)]), index)
    stats = field_statistics(index, fid).set_index("field_id")
    assert abs(stats.loc[1, "median"] - 0.8) <= TOL and stats.loc[1, "mad"] <= TOL
    assert 1 - TOL <= stats.loc[2, "median"] <= 1
    assert stats.loc[2, "mean"] == pytest.approx(1.5)
    hist = field_histograms(index, fid)
    assert hist.loc[hist.code == 2, "key"].tolist() == [1999]
    assert hist.loc[hist.code == 1, "count"].tolist() == [100]


def test_no_valid_pixel_gives_an_empty_table(raster, fields):
    index = raster(np.full((10, 10), np.nan))
    fid = field_raster(fields([1], [(0, 0, 5, 5)]), index)
    stats = field_statistics(index, fid)
    assert stats.empty and "median" in stats.columns
    assert np.isnan(robust_z(index, fid, stats).values).all()


def test_robust_z_closed_form_nan_outside_and_lazy(raster, fields):
    values, index, fid = noisy_fields(np.random.default_rng(4), raster, fields)
    stats = field_statistics(index, fid)
    z = robust_z(index, fid, stats, mad_floor=0.01)
    assert isinstance(z.data, da.Array) and z.dtype == np.float32
    assert z.dims == index.dims and z.rio.crs == index.rio.crs
    zv, codes = z.values, fid.values
    for row in stats.itertuples():
        inside = codes == int(row.field_id[1:]) + 1
        scale = MAD_TO_SIGMA * max(row.mad, 0.01)
        expected = (values[inside] - row.median) / scale
        np.testing.assert_allclose(zv[inside], expected, rtol=1e-5, atol=1e-5)
    assert np.isnan(zv[codes == 0]).all()
    assert np.isnan(zv[np.isnan(values)]).all()


@pytest.mark.parametrize("first_id", [1, 10**9])  # dense ids: a lookup table; sparse: a search
def test_robust_z_per_field_whatever_the_ids_and_nan_without_statistics(raster, fields, first_id):
    values = np.random.default_rng(5).normal(0.6, 0.1, (20, 30)).astype(np.float32)
    index = raster(values, chunks=8)
    ids = [first_id, first_id + 7, first_id + 1000]
    fid = field_raster(fields(ids, [(0, 0, 10, 10), (10, 0, 20, 30), (0, 12, 9, 30)]), index)
    stats = field_statistics(index, fid)
    z = robust_z(index, fid, stats[stats["field_id"] != ids[1]], mad_floor=0.01).values
    codes = fid.values
    for row in stats[stats["field_id"] != ids[1]].itertuples():
        inside = codes == row.field_id
        expected = (values[inside] - row.median) / (MAD_TO_SIGMA * max(row.mad, 0.01))
        np.testing.assert_allclose(z[inside], expected, rtol=1e-5, atol=1e-5)
    assert np.isnan(z[codes == ids[1]]).all()  # a field without statistics gets no z
    assert np.isnan(z[codes == 0]).all() and (codes == 0).any()


def test_mad_floor_keeps_uniform_fields_calm(raster, fields):
    values = np.full((10, 10), 0.5, np.float32)
    values[0, 0] = 0.49  # 0.01 below a MAD-0 field
    index = raster(values)
    fid = field_raster(fields([1], [(0, 0, 10, 10)]), index)
    stats = field_statistics(index, fid)
    z = robust_z(index, fid, stats, mad_floor=0.01).values
    assert z[0, 0] == pytest.approx(-0.01 / (MAD_TO_SIGMA * 0.01), abs=0.1)
    assert np.abs(z[1:]).max() < 0.1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    level=st.floats(0.3, 0.95),
    drop=st.floats(0.08, 0.6),
    spot=st.tuples(st.integers(0, 17), st.integers(0, 25), st.integers(1, 6), st.integers(1, 6)),
    chunks=st.sampled_from([5, 16, -1]),
)
def test_constant_field_with_hotspot_flags_only_the_hotspot(
    raster, fields, level, drop, spot, chunks
):
    r, c, h, w = spot
    values = np.full((24, 32), level, np.float32)
    hot = np.zeros(values.shape, bool)
    hot[r : r + h, c : c + w] = True
    values[hot] = level - drop
    index = raster(values, chunks=chunks)
    fid = field_raster(fields([1], [(0, 0, 24, 32)]), index)
    z = robust_z(index, fid, field_statistics(index, fid))
    np.testing.assert_array_equal(z.values < -3.0, hot)
    share = hotspot_share(z, fid, threshold=-3.0).iloc[0]
    assert share.valid_pixels == 24 * 32 and share.hotspot_pixels == hot.sum()
    assert share.hotspot_share == pytest.approx(hot.sum() / (24 * 32))

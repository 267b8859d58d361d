"""Management zones: known zones recovered, contiguity, auto n, season zones, quality."""

from __future__ import annotations

import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio.features
import shapely
from rasterio.transform import from_origin
from rasters import geodesic_ha

from agrivision.errors import ConfigError, GridError
from agrivision.fields.config import TimeSeriesConfig
from agrivision.fields.timeseries import clear_dates, field_series
from agrivision.health import zones
from agrivision.health.zone_classes import zone_stats
from agrivision.health.zone_cleaning import majority, merge_small_parts, sieve
from agrivision.health.zone_kernels import zone_codes
from agrivision.health.zones import ZoneBatches

X0, Y0, RES = 500_000.0, 5_800_000.0, 10.0  # the grid of tests/health/conftest.py
TRANSFORM = from_origin(X0, Y0, RES, RES)
# Areas are geodesic: a 10 m pixel at the zone's central meridian is 0.08 % larger.
PIXEL_HA = geodesic_ha(0.01, "EPSG:32633", 500_000.0, 5_800_000.0)


def three_zone_field(seed=0, noise=0.05):
    """A 60 x 90 pixel field of three irregular zones (NDVI 0.4, 0.6, 0.8) plus noise."""
    rows, cols = np.mgrid[0:60, 0:90]
    border1 = 28 + 8 * np.sin(rows / 9)  # wavy borders between the zones
    border2 = 62 - 0.3 * rows
    truth = np.where(cols < border1, 1, np.where(cols < border2, 2, 3))
    rng = np.random.default_rng(seed)
    values = np.choose(truth - 1, [0.4, 0.6, 0.8]) + rng.normal(0, noise, truth.shape)
    return values.astype(np.float32), truth


def truth_polygons(truth):
    out = {}
    for geom, k in rasterio.features.shapes(truth.astype(np.uint8), transform=TRANSFORM):
        out.setdefault(int(k), []).append(shapely.geometry.shape(geom))
    return {k: shapely.union_all(v) for k, v in out.items()}


@pytest.mark.parametrize("method", ["quantile", "kmeans"])
def test_three_known_zones_are_recovered_whatever_the_chunks(raster, fields, method):
    values, truth = three_zone_field()
    flds = fields([7], [(0, 0, 60, 90)])
    outs = [zones(raster(values, chunks=c), flds, n="auto", method=method) for c in (16, 37, -1)]
    for other in outs[1:]:  # the field is zoned on its own window: chunks change nothing
        pd.testing.assert_frame_equal(outs[0], other)
    out = outs[0]
    assert out.zones_n.iloc[0] == 3  # auto picks three
    assert sorted(out.zone) == [1, 2, 3]  # one contiguous polygon per zone
    assert out.zones_variance_reduction.iloc[0] > 0.85
    assert out.area_ha.sum() == pytest.approx(60 * 90 * PIXEL_HA, rel=1e-6)
    reference = truth_polygons(truth)
    for row in out.itertuples():
        expected = reference[row.zone]
        iou = row.geometry.intersection(expected).area / row.geometry.union(expected).area
        assert iou >= 0.8, (row.zone, iou)
    assert list(out.columns) == [
        "field_id", "zone", "mean_NDVI", "area_ha", "zones_n", "zones_polygons",
        "zones_variance_reduction", "geometry",
    ]  # fmt: skip
    means = out.sort_values("zone").mean_NDVI.to_numpy()
    assert means == pytest.approx([0.4, 0.6, 0.8], abs=0.02)


def test_auto_picks_two_for_two_zones_and_n_is_kept_when_fixed(raster, fields):
    values, truth = three_zone_field()
    values = np.where(truth == 3, 0.6 + (values - 0.8), values).astype(np.float32)  # 2 levels
    flds = fields([1], [(0, 0, 60, 90)])
    assert zones(raster(values), flds, n="auto").zones_n.iloc[0] == 2
    assert zones(raster(values), flds, n=4, min_share=0, min_area_ha=0).zone.max() == 4


def test_variance_reduction_is_one_minus_within_over_total():
    values = np.array([1.0, 2.0, 3.0, 11.0, 12.0, 13.0])
    classes = np.array([1, 1, 1, 2, 2, 2])
    within, total = 4.0, ((values - values.mean()) ** 2).sum()
    field = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])  # field 1: constant, nothing to explain
    both = np.r_[values, np.full(5, 0.7)]
    reduction, step = zone_stats(both, field, np.r_[classes, np.ones(5, int)], 3)
    assert reduction == pytest.approx([1 - within / total, 0.0, 0.0])  # field 2: no values
    assert step.tolist() == [10.0, np.inf, np.inf]  # the class means 2 and 12; one class


def test_sieve_merges_into_the_neighbour_of_the_longest_border():
    zone = np.ones((8, 12), np.uint8)
    zone[:, 6:] = 2  # zone 2 (48 px) is smaller than zone 1 (48 px + more below)
    zone = np.vstack([zone, np.ones((4, 12), np.uint8)])
    zone[2:4, 4:6] = 3  # a 4-pixel speck: 2 px of border with zone 2, 4 px with zone 1 ...
    zone[2:5, 5] = 3  # ... now 3 px with zone 2 (right), 3 + 1 + 1 with zone 1
    owner = np.ones(zone.shape, np.int32)
    out = sieve(zone, owner, np.array([0, 6]))
    assert not (out == 3).any()
    assert (out[2:5, 4:6] == 1).all()  # the longest border wins
    island = np.zeros((5, 5), np.uint8)
    island[1:3, 1:3] = 2  # a small patch surrounded by nothing stays
    np.testing.assert_array_equal(
        sieve(island, np.ones((5, 5), np.int32), np.array([0, 10])), island
    )
    # another field's patches are no neighbours: with zone 1 in field 2, the speck joins 2
    owner = np.where(zone == 1, 2, 1).astype(np.int32)
    other = sieve(zone, owner, np.array([0, 6, 6]))
    assert (other[zone == 3] == 2).all() and (other[zone != 3] == zone[zone != 3]).all()


def brute_majority(zone: np.ndarray, size: int) -> np.ndarray:
    """Reference: majority among zoned pixels, window offsets -(size//2)..size-size//2-1."""
    out = zone.copy()
    lo, hi = size // 2, size - size // 2
    for r, c in zip(*np.nonzero(zone), strict=True):
        win = zone[max(r - lo, 0) : r + hi, max(c - lo, 0) : c + hi]
        counts = np.bincount(win[win > 0], minlength=zone.max() + 1)
        best = np.flatnonzero(counts == counts.max())
        out[r, c] = zone[r, c] if zone[r, c] in best else best[0]
    return out


@pytest.mark.parametrize("size", [3, 4, 5])
def test_majority_is_a_majority_of_zoned_pixels(size):
    rng = np.random.default_rng(size)
    zone = rng.integers(0, 4, (20, 25)).astype(np.uint8)
    once = np.ones(zone.shape, np.int32)
    twice = brute_majority(brute_majority(zone, size), size)  # MAJORITY_PASSES
    np.testing.assert_array_equal(majority(zone, once, size), twice)
    # two fields side by side: each is filtered as if alone
    owner = np.where(np.arange(25) < 12, 1, 2) * once
    left, right = zone[:, :12], zone[:, 12:]
    both = np.hstack([brute_majority(brute_majority(x, size), size) for x in (left, right)])
    np.testing.assert_array_equal(majority(zone, owner, size), both)
    # fields numbered too high to share a 32-bit number with the zone: the same filter
    np.testing.assert_array_equal(majority(zone, owner + 2**23 - 1, size), both)


def test_small_gaps_are_filled_large_gaps_stay_and_areas_sum_to_the_field(raster, fields):
    values, _ = three_zone_field()
    values[10:12, 40:42] = np.nan  # 4 px: filled with the nearest zone
    values[30:40, 70:80] = np.nan  # 100 px (1 ha) >= the 0.25 ha minimum: left unzoned
    flds = fields([1], [(0, 0, 60, 90)])
    out = zones(raster(values), flds, n=3, min_share=0)  # 5 % of the field would be 270 px
    assert out.area_ha.sum() == pytest.approx((60 * 90 - 100) * PIXEL_HA, rel=1e-6)
    filled = zones(raster(values), flds, n=3)
    assert filled.area_ha.sum() == pytest.approx(60 * 90 * PIXEL_HA, rel=1e-6)
    gap = shapely.box(X0 + 70 * RES, Y0 - 40 * RES, X0 + 80 * RES, Y0 - 30 * RES)
    assert shapely.union_all(out.geometry).intersection(gap).area == pytest.approx(0, abs=1e-6)


def test_every_patch_meets_the_minimum_area_and_zones_reach_the_border(raster, fields):
    rng = np.random.default_rng(3)
    values = rng.normal(0.6, 0.1, (50, 50)).astype(np.float32)  # pure noise
    # a field whose border cuts pixels: edge pixels are zoned and clipped to it
    field = shapely.Polygon(
        [(X0 + 3, Y0 - 2), (X0 + 495, Y0 - 7), (X0 + 480, Y0 - 496), (X0 + 8, Y0 - 440)]
    )
    flds = gpd.GeoDataFrame({"field_id": [5]}, geometry=[field], crs="EPSG:32633")
    out = zones(raster(values), flds, n=3, min_area_ha=0.3, min_share=0)
    assert out.area_ha.min() >= 0.3 - 1e-9
    assert out.area_ha.sum() == pytest.approx(
        geodesic_ha(field.area / 1e4, 32633, X0, Y0), rel=1e-4
    )
    assert out.zones_polygons.iloc[0] == len(out)
    assert shapely.union_all(out.geometry).symmetric_difference(field).area < 1e-3


def test_working_width_and_min_share_raise_the_minimum(raster, fields):
    values, _ = three_zone_field(noise=0.15)
    flds = fields([1], [(0, 0, 60, 90)])
    loose = zones(raster(values), flds, n=3, min_area_ha=0.02, min_share=0, smooth=0)
    strict = zones(raster(values), flds, n=3, min_area_ha=0.02, min_share=0.2, smooth=0)
    assert len(strict) < len(loose) and strict.area_ha.min() >= 0.2 * 54 * PIXEL_HA


def test_fields_without_support_get_no_zones_and_quality_is_reported(raster, fields):
    values, _ = three_zone_field()
    values[:, 60:] = np.nan
    flds = fields([1, 2], [(0, 0, 60, 50), (10, 62, 40, 90)])  # field 2 wholly masked
    batches = ZoneBatches(raster(values, chunks=16), flds, n=3)
    out = pd.concat(list(batches))
    assert set(out.field_id) == {1}
    q = batches.quality.set_index("field_id")
    assert q.index.tolist() == [1] and q.loc[1, "zones_polygons"] == len(out)
    assert q.loc[1, "zones_variance_reduction"] == out.zones_variance_reduction.iloc[0]


def test_season_zones_use_only_clear_dates(raster, fields):
    """Four dates: two clear ones show the field's pattern; a hazy dip (complete, but
    cloud-suspect) and a mostly clouded date show the reverse and must not count."""
    values, _ = three_zone_field(noise=0.02)
    reverse = 1.2 - values
    hazy = 0.5 * reverse  # far below both clear neighbours: cloud-suspect
    clouded = reverse.copy()
    clouded[:, 30:] = np.nan  # 67 % masked: below min_valid_fraction
    stack = np.stack([values * 0.9, hazy, values, clouded]).astype(np.float32)
    times = pd.to_datetime(["2024-05-01", "2024-05-11", "2024-05-21", "2024-05-31"]).values
    series_raster = raster(stack, times=times, chunks=32)
    flds = fields([3], [(0, 0, 60, 90)])
    config = TimeSeriesConfig()
    series = field_series(flds, series_raster.to_dataset(name="NDVI"), config)
    assert series.cloud_suspect.tolist() == [False, True, False, False]
    usable = clear_dates(series, config)
    assert usable.date.tolist() == ["2024-05-01", "2024-05-21"]
    season = zones(series_raster, flds, n=3, usable=usable)
    clear_only = zones(raster(values), flds, n=3)  # the same pattern, from one clear date
    assert season.zone.tolist() == clear_only.zone.tolist()
    for a, b in zip(season.geometry, clear_only.geometry, strict=True):
        # values are binned to 0.001 (index units or ratio to the median): breaks may move
        # by a bin, a few pixels along the zone borders
        assert a.symmetric_difference(b).area < 0.02 * a.area
    # relative to the field's median (0.6): the clear dates' 0.4/0.6/0.8 zones
    relative = season.sort_values("zone").relative_NDVI.to_numpy()
    assert relative == pytest.approx([0.4 / 0.6, 1.0, 0.8 / 0.6], abs=0.02)
    # without the clear-date list the hazy (reversed) date counts and flattens the zones
    with_haze = zones(series_raster, flds, n=3).sort_values("zone").relative_NDVI.to_numpy()
    assert with_haze[0] > 0.8 and with_haze[-1] < 1.2


def test_zones_refuse_bad_settings_and_dims(raster, fields):
    flds = fields([1], [(0, 0, 10, 10)])
    with pytest.raises(GridError, match=r"\(y, x\) or \(time, y, x\)"):
        zones(raster(np.zeros((10, 10))).expand_dims(band=2), flds)
    for bad in ({"n": 1}, {"n": "many"}, {"method": "jenks"}, {"smooth": -1}, {"min_area_ha": -1}):
        with pytest.raises(ConfigError, match=r"n in 2\.\.254 or 'auto'"):
            zones(raster(np.zeros((10, 10))), flds, **bad)


def test_small_clipped_parts_join_the_polygon_of_the_longest_border():
    a = shapely.box(0, 0, 100, 100)  # zone 1
    b = shapely.box(100, 0, 200, 30)  # zone 2, smaller than a
    s = shapely.box(100, 30, 110, 60)  # zone 3: 30 m of border with a, 10 m with b
    far = shapely.box(300, 0, 305, 5)  # no neighbour: stays
    parts, zones_of = merge_small_parts(np.array([a, b, s, far]), np.array([1, 2, 3, 2]), 400.0)
    assert zones_of.tolist() == [1, 2, 2]
    assert parts[0].equals(shapely.union(a, s)) and parts[2].equals(far)


def test_a_fields_zones_do_not_depend_on_its_neighbours(raster, fields, monkeypatch):
    """Two fields share the pixels their border cuts (edge of one, inside of the other):
    each is zoned as if it were alone, and each one's zones fill exactly its own area."""
    values, _ = three_zone_field()
    left = shapely.Polygon(
        [(X0, Y0), (X0 + 455, Y0), (X0 + 415, Y0 - 600), (X0, Y0 - 600)]
    )  # a slanted border through pixels
    right = shapely.box(X0, Y0 - 600, X0 + 900, Y0).difference(left)
    both = gpd.GeoDataFrame({"field_id": [1, 2]}, geometry=[left, right], crs="EPSG:32633")
    together = zones(raster(values, chunks=16), both, n="auto")
    for fid, geom in ((1, left), (2, right)):
        alone = zones(raster(values, chunks=16), both[both.field_id == fid], n="auto")
        mine = together[together.field_id == fid].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)
        planar = shapely.union_all(mine.geometry)
        assert planar.symmetric_difference(geom).area < 1e-3  # fills the field, no more
    # one canvas per field (memory bounded by the canvas size): the same zones
    monkeypatch.setattr(sys.modules[ZoneBatches.__module__], "CANVAS_PIXELS", 1)
    pd.testing.assert_frame_equal(zones(raster(values, chunks=16), both, n="auto"), together)


def test_fields_decided_early_leave_the_others_zones_unchanged(raster, fields):
    """``auto`` tries each n only on the fields still undecided (their windows moved to a
    smaller canvas): a uniform field (one zone), a two-level field (two) and the three-zone
    field (three) zoned together are zoned exactly as each one alone."""
    three, truth = three_zone_field()
    two = np.where(truth == 3, 0.6 + (three - 0.8), three)
    uniform = 0.6 + (three - np.choose(truth - 1, [0.4, 0.6, 0.8])) / 5
    gap = np.full((60, 1), np.nan, np.float32)
    values = np.hstack([uniform, gap, two, gap, three]).astype(np.float32)
    flds = fields([1, 2, 3], [(0, 0, 60, 90), (0, 91, 60, 181), (0, 182, 60, 272)])
    together = zones(raster(values), flds, n="auto")
    assert together.groupby("field_id").zones_n.first().tolist() == [1, 2, 3]
    for fid in (1, 2, 3):
        alone = zones(raster(values), flds[flds.field_id == fid], n="auto")
        mine = together[together.field_id == fid].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)


def test_fields_of_one_zone_are_left_whole_where_allowed():
    owner = np.array([[1, 1, 0, 2, 2, 0, 3, 3], [1, 1, 0, 2, 2, 0, 3, 3]], np.int32)
    zone = np.array([[2, 2, 0, 1, 2, 0, 1, 1], [2, 2, 0, 1, 2, 0, 1, 1]], np.uint8)
    code, whole = zone_codes(zone, owner, np.array([False, True, True, False]))
    assert whole.tolist() == [0, 1 * 256 + 2, 0, 0]  # field 2 mixed, field 3 not allowed
    expected = np.where(owner == 1, 0, owner * 256 + zone) * (owner > 0)
    np.testing.assert_array_equal(code, expected)
    zone[0, 0] = 0  # a pixel without a zone: the field is no longer whole
    code, whole = zone_codes(zone, owner, np.array([False, True, True, False]))
    assert whole.tolist() == [0, 0, 0, 0] and code[1, 0] == 1 * 256 + 2 and code[0, 0] == 0

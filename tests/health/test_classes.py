"""classify: closed-form classes, YAML rules, NaN/outside handling, laziness, chunk invariance."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasters import geodesic_ha

from agrivision.errors import ConfigError, SpectralIndexError
from agrivision.fields.rasterize import field_raster
from agrivision.health import (
    DEFAULT_SCHEMA,
    ClassSchema,
    HealthClass,
    HealthRules,
    class_areas,
    classify,
)

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
HEALTHY, STRESSED, ANOMALY, BARE = 1, 2, 3, 4

# Class areas are geodesic: a 10 m pixel at the zone's central meridian is 0.08 % larger.
PIXEL_HA = geodesic_ha(0.01, "EPSG:32633", 500_000.0, 5_800_000.0)


def expected_three(masks: dict) -> np.ndarray:
    out = np.zeros(masks["A"].shape, np.uint8)
    out[masks["A"]] = HEALTHY
    out[masks["hot"]] = ANOMALY
    out[masks["B"]] = STRESSED
    out[masks["C"]] = BARE
    return out


def test_three_fields_closed_form(raster, three_fields):
    values, flds, masks = three_fields
    classes = classify(xr.Dataset({"NDVI": raster(values)}), flds)
    assert classes.dtype == np.uint8 and classes.name == "health_class"
    np.testing.assert_array_equal(classes.values, expected_three(masks))
    assert classes.rio.crs.to_epsg() == 32633 and classes.rio.nodata == 0
    assert ClassSchema.from_json(classes.attrs["class_schema"]) == DEFAULT_SCHEMA
    assert json.loads(classes.attrs["health_rules"])["anomaly_z"] == -3.0


def test_uniformly_weaker_field_is_stressed_not_pest_with_noise(raster, three_fields):
    values, flds, masks = three_fields
    rng = np.random.default_rng(0)
    noisy = values + rng.normal(0, 0.02, values.shape).astype(np.float32)
    classes = classify(xr.Dataset({"NDVI": raster(noisy)}), flds).values
    b = classes[masks["B"]]
    # a few normal-tail pixels may pass z < -3; the field as a whole is not "pest"
    assert (b == STRESSED).mean() > 0.95 and (b == ANOMALY).mean() < 0.02
    assert (classes[masks["hot"]] == ANOMALY).all()
    a_rest = classes[masks["A"] & ~masks["hot"]]
    assert (a_rest == HEALTHY).mean() > 0.85 and (a_rest == ANOMALY).mean() < 0.01


def test_yaml_thresholds_change_the_output(raster, three_fields, tmp_path):
    values, flds, masks = three_fields
    default = HealthRules.from_yaml(REPO / "config" / "health-default.yaml")
    assert default == HealthRules()  # the shipped example documents the real defaults
    path = tmp_path / "rules.yaml"
    path.write_text("health:\n  stressed_ndvi: 0.45\n  bare_ndvi: 0.05\n  anomaly_z: -40\n")
    rules = HealthRules.from_yaml(path)
    classes = classify(xr.Dataset({"NDVI": raster(values)}), flds, rules=rules).values
    assert (classes[masks["B"]] == HEALTHY).all()  # 0.5 is no longer below stressed_ndvi
    assert (classes[masks["C"]] == STRESSED).all()  # 0.1 is no longer bare, but < 0.45
    assert (classes[masks["hot"]] == STRESSED).all()  # z = -33.7 is not below -40
    top_level = tmp_path / "flat.yaml"
    top_level.write_text("stressed_ndvi: 0.45\nbare_ndvi: 0.05\nanomaly_z: -40\n")
    assert HealthRules.from_yaml(top_level) == rules


def test_the_old_pest_key_names_the_new_one(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("health:\n  pest_z: -3.5\n")
    with pytest.raises(ConfigError) as caught:
        HealthRules.from_yaml(old)
    assert str(caught.value).count("\n") == 0
    assert "old.yaml" in str(caught.value) and "pest_z was renamed to anomaly_z" in str(
        caught.value
    )
    assert "anomaly_z: -3.5" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("health:\n  pest_zz: -3\n", "pest_zz.*allowed: bare_ndvi"),
        ("anomaly_z: -1\n", "anomaly_z must be below stressed_z"),
        ("bare_ndvi: 0.6\n", "bare_ndvi must be below stressed_ndvi"),
        ("mad_floor: 0\n", "mad_floor"),
        ("stressed_ndvi: high\n", "stressed_ndvi"),
    ],
)
def test_invalid_rules_name_the_key_and_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        HealthRules.from_yaml(path)
    assert "bad.yaml" in str(info.value)


def test_rules_from_a_report_config_dict():
    assert HealthRules(**{"stressed_ndre": None}).stressed_ndre is None
    with pytest.raises(ConfigError, match=r"stressed: Extra inputs.*allowed: bare_ndvi"):
        HealthRules(**{"stressed": 0.5})


def test_nan_and_outside_fields_are_background(raster, three_fields):
    values, flds, masks = three_fields
    values = values.copy()
    values[masks["B"] & (np.arange(60) < 35)[None, :]] = np.nan
    classes = classify(xr.Dataset({"NDVI": raster(values)}), flds).values
    assert (classes[np.isnan(values)] == 0).all()
    outside = ~(masks["A"] | masks["B"] | masks["C"])
    assert (classes[outside] == 0).all()
    assert (classes[masks["B"] & ~np.isnan(values)] == STRESSED).all()


def test_ndre_rule_and_its_nan(raster, three_fields):
    values, flds, masks = three_fields
    ndre = np.full(values.shape, 0.4, np.float32)
    ndre[2:5, 2:22] = 0.2  # low chlorophyll in the top rows of A
    ndre[20:22, 2:22] = np.nan
    ds = xr.Dataset({"NDVI": raster(values), "NDRE": raster(ndre, chunks=8)})
    classes = classify(ds, flds).values
    assert (classes[2:5, 2:22] == STRESSED).all()
    assert (classes[20:22, 2:22] == 0).all()
    assert (classes[masks["hot"]] == ANOMALY).all()
    ignored = classify(ds, flds, rules=HealthRules(stressed_ndre=None)).values
    assert (ignored[2:5, 2:22] == HEALTHY).all() and (ignored[20:22, 2:22] == HEALTHY).all()


def test_lazy_only_the_statistics_pass_is_computed(raster, three_fields):
    values, flds, _ = three_fields
    calls = []

    def count(block):
        calls.append(block.shape)
        return block

    base = raster(values, chunks=16)
    counted = base.copy(data=base.data.map_blocks(count, dtype=np.float32))
    calls.clear()
    classes = classify(xr.Dataset({"NDVI": counted}), flds)
    n_chunks = counted.data.npartitions
    assert len(calls) == n_chunks  # exactly one pass: the per-field histograms
    assert isinstance(classes.data, da.Array)
    classes.compute()
    assert len(calls) == 2 * n_chunks  # the class raster reads NDVI once more


def test_chunk_invariant(raster, three_fields):
    values, flds, _ = three_fields
    rng = np.random.default_rng(5)
    noisy = values + rng.normal(0, 0.03, values.shape).astype(np.float32)
    chunked = classify(xr.Dataset({"NDVI": raster(noisy, chunks=16)}), flds).values
    whole = classify(xr.Dataset({"NDVI": raster(noisy, chunks=-1)}), flds).values
    np.testing.assert_array_equal(chunked, whole)


def test_without_fields_the_whole_image_is_one_field(raster):
    values = np.full((30, 30), 0.8, np.float32)
    values[10:14, 10:14] = 0.4
    values[0, :] = np.nan
    classes = classify(xr.Dataset({"NDVI": raster(values)})).values
    assert (classes[10:14, 10:14] == ANOMALY).all()
    assert (classes[0] == 0).all()
    assert (classes == HEALTHY).sum() == 29 * 30 - 16


def test_time_series_scores_each_date_against_its_own_field(raster, fields):
    values = np.full((2, 20, 20), 0.8, np.float32)
    values[0, 2:6, 2:6] = 0.5  # hotspot on date 0 only
    values[1] = 0.5  # date 1: the whole field weaker, uniformly
    dates = pd.to_datetime(["2024-05-01", "2024-06-01"])
    flds = fields([1], [(0, 0, 20, 20)])
    classes = classify(xr.Dataset({"NDVI": raster(values, times=dates)}), flds)
    assert classes.dims == ("time", "y", "x")
    v = classes.values
    assert (v[0, 2:6, 2:6] == ANOMALY).all() and (v[0] == ANOMALY).sum() == 16
    assert (v[1] == STRESSED).all()


def test_all_nan_warns_and_gives_background(raster, three_fields, monkeypatch):
    values, flds, _ = three_fields
    # Recorded at the call, not through the global warning filters: a dask or rasterio thread
    # of an earlier test that leaves ``warnings.catch_warnings`` late restores them under
    # ``pytest.warns`` and hides the warning at random.
    warned = []
    monkeypatch.setattr(
        "agrivision.health.classes.warnings.warn",
        lambda message, category=None, **_: warned.append((category, message)),
    )
    classes = classify(xr.Dataset({"NDVI": raster(np.full_like(values, np.nan))}), flds)
    assert [c for c, m in warned if "all background" in m] == [UserWarning]
    assert (classes.values == 0).all()


def test_custom_schema_codes_and_missing_ndvi(raster, three_fields):
    values, flds, masks = three_fields
    schema = ClassSchema(
        (
            HealthClass(0, "background", "none", (0, 0, 0, 0)),
            HealthClass(10, "healthy", "ok", (0, 255, 0, 255)),
            HealthClass(20, "stressed", "weak", (255, 160, 0, 255)),
            HealthClass(30, "anomaly", "pest", (255, 0, 0, 255)),
            HealthClass(40, "bare_soil", "soil", (120, 70, 20, 255)),
        )
    )
    classes = classify(xr.Dataset({"NDVI": raster(values)}), flds, schema=schema).values
    np.testing.assert_array_equal(classes, expected_three(masks) * 10)
    with pytest.raises(SpectralIndexError, match=r"needs NDVI.*EVI"):
        classify(xr.Dataset({"EVI": raster(values)}), flds)
    partial = ClassSchema(schema.classes[:3])
    with pytest.raises(ConfigError, match="anomaly"):
        classify(xr.Dataset({"NDVI": raster(values)}), flds, schema=partial)


def test_class_areas_of_the_three_fields(raster, three_fields):
    values, flds, _ = three_fields
    ndvi = raster(values)
    classes = classify(xr.Dataset({"NDVI": ndvi}), flds)
    areas = class_areas(classes, field_raster(flds, ndvi)).set_index(["field_id", "class"])
    assert areas.loc[("A", HEALTHY), "pixels"] == 400 - 25
    assert areas.loc[("A", ANOMALY), "area_ha"] == pytest.approx(25 * PIXEL_HA)
    assert areas.loc[("A", ANOMALY), "class_name"] == "anomaly"
    assert areas.loc[("B", STRESSED), "share"] == 1.0
    assert areas.loc[("C", BARE), "area_ha"] == pytest.approx(13 * 40 * PIXEL_HA)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    boxes=st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 12), st.integers(1, 12)),
        min_size=1, max_size=4,
    ),
    seed=st.integers(0, 2**16),
    chunks=st.sampled_from([7, 32]),
)  # fmt: skip
def test_class_areas_of_a_field_sum_to_its_area(raster, fields, boxes, seed, chunks):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 0.95, (32, 32)).astype(np.float32)
    ndvi = raster(values, chunks=chunks)
    flds = fields(range(1, len(boxes) + 1), [(r, c, r + h, c + w) for r, c, h, w in boxes])
    fid = field_raster(flds, ndvi)
    areas = class_areas(classify(xr.Dataset({"NDVI": ndvi}), flds), fid)
    total = areas.groupby("field_id")["area_ha"].sum()
    codes = fid.values
    for field_id in np.unique(codes[codes > 0]):
        assert total[field_id] == pytest.approx((codes == field_id).sum() * PIXEL_HA)
    assert areas.groupby("field_id")["share"].sum().to_numpy() == pytest.approx(1.0)
    # disjoint fields: a field's classified area is its polygon area
    if not flds.geometry.union_all().area < flds.geometry.area.sum() - 1e-6:
        planar = flds.area.to_numpy() / 1e4
        assert total.sort_index().to_numpy() == pytest.approx(planar * PIXEL_HA / 0.01)

"""Synthetic layouts: parcels, patches, land cover; deterministic and window-consistent."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from agrivision.errors import ConfigError
from agrivision.synthetic import CONDITIONS, Landscape, make_fields, make_layout


@pytest.fixture(scope="module")
def layout():
    return make_layout(7, shape=(600, 800), resolution=10.0)


def test_same_seed_same_fields_other_seed_other_fields(layout):
    again = make_fields(7, shape=(600, 800))
    assert again.geometry.geom_equals_exact(layout.fields.geometry, 0).all()
    pd.testing.assert_frame_equal(
        again.drop(columns="geometry"), layout.fields.drop(columns="geometry")
    )
    other = make_fields(8, shape=(600, 800))
    assert (
        len(other) != len(layout.fields)
        or not other.geometry.geom_equals(layout.fields.geometry).all()
    )


def test_fields_are_valid_disjoint_parcels_of_the_requested_size(layout):
    fields = layout.fields
    assert fields.crs.to_epsg() == 32633 and fields["field_id"].is_unique
    assert fields.geometry.is_valid.all() and (fields.geom_type == "Polygon").all()
    bounds = shapely.box(*layout.bounds)
    assert fields.geometry.within(bounds.buffer(1e-6)).all()
    # Disjoint: the union's area equals the sum of the areas (margins separate fields).
    union = shapely.union_all(fields.geometry.values)
    assert union.area == pytest.approx(fields.area.sum(), rel=1e-9)
    assert np.allclose(fields["area_ha"], fields.area / 1e4)
    # Fields not cut by the bounds have the requested mean size (20 ha) within 25 %.
    inner = fields[fields.geometry.within(bounds.buffer(-300))]
    assert len(inner) > 20
    assert inner["area_ha"].mean() == pytest.approx(20, rel=0.25)
    # Fields are separated by margins: no two fields touch.
    pairs = gpd.sjoin(fields, fields, predicate="intersects")
    assert (pairs["field_id_left"] == pairs["field_id_right"]).all()


def test_truth_attributes_are_consistent(layout):
    f = layout.fields
    assert set(f["condition"]) <= set(CONDITIONS)
    assert set(f["crop"]) <= {"wheat", "maize", "sugar_beet", "rapeseed"}
    shares = f[["healthy_share", "stressed_share", "pest_share", "bare_share"]]
    assert ((shares >= -1e-12) & (shares <= 1 + 1e-12)).all().all()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert (f.loc[f.condition == "healthy", "healthy_share"] == 1).all()
    assert (f.loc[f.condition == "uniform_stress", "stressed_share"] == 1).all()
    assert (f.loc[f.condition == "bare", "bare_share"] == 1).all()
    inner = f[f.geometry.within(shapely.box(*layout.bounds).buffer(-100))]  # not cut by bounds
    patches = inner[inner.condition == "stress_patches"]
    assert ((patches.stressed_share > 0.005) & (patches.stressed_share < 0.8)).all()
    assert (inner.loc[inner.condition == "pest", "pest_share"] > 0.005).all()
    assert f["declining"].sum() > 0
    assert f.loc[f.declining, "onset_doy"].between(130, 190).all()
    assert f.loc[~f.declining, "onset_doy"].isna().all()


def test_patch_shares_are_clipped_patch_areas(layout):
    f, p = layout.fields.set_index("field_id"), layout.patches
    assert set(p["class"]) <= {2, 3, 4}
    own_field = f.geometry.reindex(p.field_id).buffer(1e-6).to_numpy()
    assert shapely.within(p.geometry.to_numpy(), own_field).all()
    # Patches of one field never overlap, so the share is a plain sum of areas.
    for fid, group in p.groupby("field_id"):
        union = shapely.union_all(group.geometry.values).area
        assert union == pytest.approx(group.area.sum(), rel=1e-9)
        cls = group["class"].iloc[0]
        name = {2: "stressed_share", 3: "pest_share", 4: "bare_share"}[cls]
        assert f.loc[fid, name] == pytest.approx(union / f.loc[fid].geometry.area)


def test_land_cover_has_the_non_crop_classes(layout):
    lc = layout.landcover
    assert set(lc["name"]) >= {"forest", "road"}
    assert lc.geometry.is_valid.all()
    water = make_layout(3, shape=(2000, 2000)).landcover
    assert "water" in set(water["name"]) and "built" in set(water["name"])


def test_a_window_rebuilds_the_same_fields():
    land = Landscape(5, (500000, 5790000, 510000, 5800000))
    full = land.layout().fields.set_index("field_id")
    window = (503000, 5793000, 505000, 5795000)
    part = land.layout(window).fields.set_index("field_id")
    touching = full[full.intersects(shapely.box(*window))]
    assert set(touching.index) <= set(part.index)
    common = part.index.intersection(full.index)
    assert part.loc[common].geometry.geom_equals_exact(full.loc[common].geometry, 0).all()
    assert (part.loc[common, "condition"] == full.loc[common, "condition"]).all()


def test_n_fields_and_invalid_requests():
    fields = make_fields(0, shape=(1000, 1000), n_fields=100)
    assert 60 <= len(fields) <= 150
    with pytest.raises(ConfigError, match="projected"):
        make_fields(0, crs="EPSG:4326")
    with pytest.raises(ConfigError, match="mean_field_ha"):
        make_fields(0, mean_field_ha=0)

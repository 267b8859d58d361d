"""Edge pixels stay out of the anomaly statistics; fields without support get no z at all."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely import box

from agrivision.health import HealthRules, classify
from agrivision.health.schema import DEFAULT_SCHEMA

ANOMALY, STRESSED, HEALTHY = (DEFAULT_SCHEMA.code(n) for n in ("anomaly", "stressed", "healthy"))
SOIL, CROP = 0.15, 0.8
X0, Y0, RES = 500_000.0, 5_800_000.0, 10.0  # the grid of the ``raster`` fixture


def field_beside_soil(patch: bool = False):
    """A healthy field (NDVI 0.8 +- 0.003) in bare soil (0.15), its borders off the pixel grid.

    Edge pixels mix both by their coverage (0.3..0.7 of a pixel): NDVI 0.35..0.6, far below
    the field's median. Returns (NDVI values, fields, interior mask, edge mask).
    """
    x0, x1, y0, y1 = 4.3, 35.6, 3.4, 28.7  # field borders in pixels (columns, rows)
    cols, rows = np.arange(48) + 0.0, np.arange(32) + 0.0
    cov_x = np.clip(np.minimum(cols + 1, x1) - np.maximum(cols, x0), 0, 1)
    cov_y = np.clip(np.minimum(rows + 1, y1) - np.maximum(rows, y0), 0, 1)
    cov = cov_y[:, None] * cov_x[None, :]
    crop = CROP + 0.003 * np.random.default_rng(3).standard_normal(cov.shape)
    if patch:
        crop[14:17, 18:21] = 0.4  # a 3 x 3 interior patch far below the median
    values = (cov * crop + (1 - cov) * SOIL).astype(np.float32)
    geom = box(X0 + RES * x0, Y0 - RES * y1, X0 + RES * x1, Y0 - RES * y0)
    fields = gpd.GeoDataFrame({"field_id": [1]}, geometry=[geom], crs="EPSG:32633")
    centre_inside = (cov_y[:, None] >= 0.5) & (cov_x[None, :] >= 0.5)
    return values, fields, cov == 1, centre_inside & (cov < 1)


@pytest.mark.parametrize("chunks", [5, 64])
def test_a_healthy_field_beside_bare_soil_has_no_anomaly_along_its_edge(raster, chunks):
    values, fields, interior, edge = field_beside_soil()
    ndvi = xr.Dataset({"NDVI": raster(values, chunks=chunks)})
    classes = classify(ndvi, fields).values
    assert edge.sum() == 2 * (32 + 26) - 4  # one ring of mixed pixels around 32 x 26
    assert (classes == ANOMALY).sum() == 0
    assert (classes[interior] == HEALTHY).all()
    # the mixed edge pixels (NDVI 0.35..0.6) get no class: neither anomaly nor "stressed"
    assert (classes[edge] == 0).all()

    # with the edge included, the same pixels are the field's "anomalies": the test can fail
    included = classify(ndvi, fields, rules=HealthRules(edge="include")).values
    assert (included == ANOMALY).sum() >= edge.sum() - 4
    assert ((included == ANOMALY) <= edge).all()


@pytest.mark.parametrize("inner_buffer_m", [0.0, 20.0])
def test_an_interior_patch_in_the_same_field_is_found(raster, inner_buffer_m):
    values, fields, interior, _ = field_beside_soil(patch=True)
    rules = HealthRules(inner_buffer_m=inner_buffer_m)  # the patch is 100 m from the border
    ndvi = xr.Dataset({"NDVI": raster(values, chunks=7)})
    classes = classify(ndvi, fields, rules=rules).values
    expected = np.zeros(values.shape, bool)
    expected[14:17, 18:21] = True
    np.testing.assert_array_equal(classes == ANOMALY, expected)
    # the inner buffer widens the unclassified edge: 20 m is two more rings of pixels
    core = interior.copy()
    if inner_buffer_m:
        rows, cols = np.nonzero(interior)
        core[:] = False
        core[rows.min() + 2 : rows.max() - 1, cols.min() + 2 : cols.max() - 1] = True
    assert (classes[core & ~expected] == HEALTHY).all()
    assert (classes[~core] == 0).all()


def test_a_field_without_enough_interior_pixels_gets_no_z(raster):
    values = np.full((20, 20), CROP, np.float32)
    values[5, 5] = 0.3  # a deep outlier in a 5 x 5 field (25 pixels < 30)
    fields = gpd.GeoDataFrame(
        {"field_id": [1]}, geometry=[box(X0 + 30, Y0 - 80, X0 + 80, Y0 - 30)], crs="EPSG:32633"
    )
    ndvi = xr.Dataset({"NDVI": raster(values)})
    assert (classify(ndvi, fields).values == ANOMALY).sum() == 0
    assert (classify(ndvi, fields, min_pixels=25).values == ANOMALY).sum() == 1

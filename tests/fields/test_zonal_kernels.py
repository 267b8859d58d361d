"""The numba kernels behind zonal_stats: exact coverage, radix sort, weighted quantiles."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from agrivision.fields.coverage import group_coverage, pixel_rings
from agrivision.fields.zonal_kernels import _radix_argsort, _weighted_quantiles

H, W = 12, 15


def coverage_grid(geom, transform, shape=(H, W)):
    """Dense coverage fractions of one geometry on a grid (via the sparse kernel)."""
    rings = pixel_rings(np.array([geom], dtype=object), transform, shape)
    _, idx, cov, total = group_coverage(
        rings.cols,
        rings.rows,
        rings.ring_ptr,
        rings.ring_sign,
        rings.field_ptr,
        rings.bbox,
        0,
        0,
        shape[1],
    )
    dense = np.zeros(shape[0] * shape[1])
    dense[idx] = cov
    assert total[0] == pytest.approx(cov.sum())
    return dense.reshape(shape)


def shapely_grid(geom, transform, shape=(H, W)):
    rr, cc = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    x0, y0 = transform @ (cc, rr)
    x1, y1 = transform @ (cc + 1, rr + 1)
    cells = shapely.box(
        np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)
    )
    return (
        shapely.area(shapely.intersection(cells, geom)) / abs(transform.a * transform.e)
    ).reshape(shape)


coords = st.floats(-3, 18, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(st.tuples(coords, coords), min_size=3, max_size=12),
    hole=st.booleans(),
    north_up=st.booleans(),
)
def test_coverage_equals_shapely_intersection_areas(points, hole, north_up):
    geom = shapely.make_valid(shapely.Polygon(points))
    geom = shapely.union_all(
        [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    )
    if geom.is_empty or geom.area < 1e-6:
        return
    if hole:
        inner = shapely.buffer(geom, -0.7)
        if not inner.is_empty:
            geom = geom.difference(shapely.convex_hull(inner).buffer(-0.3))
    # Pixel size 10 m; north-up (y decreasing with rows) or south-up grids.
    transform = Affine(10, 0, 1000, 0, -10, 5000) if north_up else Affine(10, 0, 1000, 0, 10, 4880)
    world = shapely.transform(geom, lambda xy: np.c_[transform @ (xy[:, 0], xy[:, 1])])
    if not world.is_valid or world.is_empty:
        return
    np.testing.assert_allclose(
        coverage_grid(world, transform), shapely_grid(world, transform), atol=1e-12
    )


def test_coverage_of_cell_aligned_square_is_exactly_one():
    cov = coverage_grid(shapely.box(20, 30, 60, 80), Affine(10, 0, 0, 0, -10, 120))
    assert set(np.unique(cov)) == {0.0, 1.0}
    assert cov.sum() == 20.0


def test_radix_argsort_matches_stable_argsort():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.normal(size=500),
            rng.integers(-3, 3, 200).astype(float),
            [0.0, -0.0, np.inf, -np.inf, 1e-300, -1e-300],
        ]
    )
    rng.shuffle(x)
    n = len(x)
    order = _radix_argsort(
        x,
        n,
        np.empty(n, np.uint64),
        np.empty(n, np.uint64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty((8, 256), np.int64),
    )
    np.testing.assert_array_equal(x[order[:n]], np.sort(x))
    ties = x[order[:n]] == x[np.argsort(x, kind="stable")]
    assert ties.all()


def quantiles(x, w, qs):
    n = len(x)
    out = np.empty(len(qs))
    _weighted_quantiles(
        x,
        w,
        n,
        np.asarray(qs, float),
        out,
        np.empty((2, n), np.uint64),
        np.empty((2, n), np.int64),
        np.empty((8, 256), np.int64),
        np.empty(n),
        np.empty(n),
        np.empty(n),
    )
    return out


def test_equal_weights_give_numpy_linear_quantiles():
    rng = np.random.default_rng(1)
    x = rng.random(301)
    qs = [0.0, 0.1, 0.5, 0.9, 0.975, 1.0]
    np.testing.assert_allclose(quantiles(x, np.ones_like(x), qs), np.quantile(x, qs), rtol=1e-12)


def test_ties_are_merged_before_interpolating():
    # x = 1, 1, 2 (w = .5, .5, 1) is the same distribution as x = 1, 2 with w = 1, 1.
    merged = quantiles(np.array([1.0, 2.0, 1.0]), np.array([0.5, 1.0, 0.5]), [0.3, 0.5])
    np.testing.assert_allclose(merged, quantiles(np.array([1.0, 2.0]), np.ones(2), [0.3, 0.5]))
    assert quantiles(np.array([4.0]), np.array([0.2]), [0.1])[0] == 4.0

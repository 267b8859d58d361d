"""Property-based tests (hypothesis) of invariants that must hold for any valid input."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasters import geodesic_ha

from agrivision.errors import FormulaError
from agrivision.fields.config import FieldTableConfig
from agrivision.fields.table import INSUFFICIENT, field_table
from agrivision.fields.vectorize import vectorize
from agrivision.fields.zonal import zonal_stats
from agrivision.indices import compute
from agrivision.indices.formula import compile_formula
from agrivision.io.fields import area_ha, read_fields

SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
X0, Y0, RES = 500000.0, 5800000.0, 10.0


def grid(data: np.ndarray, name: str | None = None, chunks: int | None = None) -> xr.DataArray:
    """A north-up EPSG:32633 raster at 10 m with its top-left corner at (X0, Y0)."""
    h, w = data.shape
    arr = xr.DataArray(
        data, dims=("y", "x"), name=name,
        coords={"y": Y0 - (np.arange(h) + 0.5) * RES, "x": X0 + (np.arange(w) + 0.5) * RES},
    ).rio.write_crs("EPSG:32633")  # fmt: skip
    return arr.chunk(chunks) if chunks else arr


reflectance = st.floats(0, 1, width=32, allow_subnormal=False)
ND_INDICES = {"NDVI": ("nir", "red"), "GNDVI": ("nir", "green"), "NDWI": ("green", "nir"),
              "NDMI": ("nir", "swir16"), "NBR": ("nir", "swir22")}  # fmt: skip


@SETTINGS
@given(arrays(np.float32, (5, 4, 6), elements=reflectance))
def test_normalised_differences_stay_in_range(values):
    names = ("red", "green", "nir", "swir16", "swir22")
    scene = xr.Dataset({n: grid(values[i], chunks=3) for i, n in enumerate(names)})
    out = compute(scene, list(ND_INDICES)).compute()
    for index, (a, b) in ND_INDICES.items():
        got = out[index].values
        both_zero = (scene[a] + scene[b]).values == 0
        assert np.isnan(got[both_zero]).all()
        assert (np.abs(got[~both_zero]) <= 1).all(), index


def boxes(h: int, w: int):
    """Axis-aligned fields (in pixel units, possibly partly outside the raster)."""
    edge = st.floats(-2, max(h, w) + 2, allow_nan=False)
    return st.lists(st.tuples(edge, edge, edge, edge), min_size=1, max_size=4).map(
        lambda rows: [
            shapely.box(X0 + min(a, b) * RES, Y0 - (max(c, d) + 0.5) * RES,
                        X0 + (max(a, b) + 0.5) * RES, Y0 - min(c, d) * RES)
            for a, b, c, d in rows
        ]
    )  # fmt: skip


def fields_of(geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"field_id": np.arange(len(geoms))}, geometry=geoms, crs=32633)


@SETTINGS
@given(
    arrays(np.float32, (9, 11), elements=st.floats(-1e3, 1e3, width=32) | st.just(np.nan)),
    boxes(9, 11),
)
def test_field_mean_lies_between_min_and_max(values, geoms):
    stats = zonal_stats(
        grid(values, chunks=4), fields_of(geoms), stats=["mean", "min", "max", "count"]
    )
    seen = stats[stats["count"] > 0]
    tol = 1e-5 * np.maximum(1, np.abs(seen[["min", "max"]]).max(axis=1))
    assert (seen["min"] - tol <= seen["mean"]).all() and (seen["mean"] <= seen["max"] + tol).all()
    assert stats.loc[stats["count"] == 0, "mean"].isna().all()


@SETTINGS
@given(
    arrays(np.uint8, (10, 12), elements=st.integers(1, 4)),
    arrays(np.float32, (10, 12), elements=st.floats(-1, 1, width=32)),
    boxes(8, 10),
)
def test_class_areas_sum_to_field_area(classes, ndvi, geoms):
    inside = [g for g in geoms if shapely.box(X0, Y0 - 10 * RES, X0 + 12 * RES, Y0).contains(g)]
    assume(inside)
    fields = fields_of(inside)
    index = xr.Dataset({"NDVI": grid(ndvi, chunks=5)})
    # one usable pixel is enough for a verdict here: most generated fields get class areas
    config = FieldTableConfig(problems={"min_pixels": 1})
    table, _ = field_table(fields, index, grid(classes, chunks=5), config=config)
    areas = table[["healthy_ha", "stressed_ha", "anomaly_ha", "bare_ha"]]
    judged = (table["status"] != INSUFFICIENT).to_numpy()
    np.testing.assert_allclose(areas[judged].sum(axis=1), table["area_ha"][judged], rtol=1e-5)
    assert areas[~judged].isna().all(axis=None)  # no class areas without a verdict
    # geodesic areas: the planar ones over the projection's areal scale at the central meridian
    planar = fields.geometry.area / 1e4
    np.testing.assert_allclose(table["area_ha"], planar / 0.9996**2, rtol=1e-7)


@SETTINGS
@given(
    arrays(np.uint8, (13, 17), elements=st.integers(0, 3)),
    st.sampled_from([4, 5, 7, 17]),
    st.sampled_from([4, 8]),
)
def test_vectorize_conserves_area(classes, chunks, connectivity):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an all-background raster warns "nothing found"
        polys = vectorize(grid(classes, chunks=chunks), connectivity=connectivity)
    pixel_ha = RES * RES / 1e4
    geodesic_pixel_ha = geodesic_ha(pixel_ha, "EPSG:32633", X0, Y0)
    for code in (1, 2, 3):
        mine = polys[polys["class"] == code]
        expected = (classes == code).sum() * pixel_ha
        assert mine["area_ha"].sum() == pytest.approx(
            (classes == code).sum() * geodesic_pixel_ha, rel=1e-7, abs=1e-12
        )
        assert mine.geometry.area.sum() / 1e4 == pytest.approx(expected, abs=1e-9)
    assert not shapely.union_all(polys.geometry).is_empty or not classes.any()


@SETTINGS
@given(
    x=st.floats(300_000, 700_000),
    y=st.floats(4_000_000, 7_000_000),
    w=st.floats(1, 5_000),
    h=st.floats(1, 5_000),
)
def test_field_reprojection_round_trip(x, y, w, h, tmp_path_factory):
    square = shapely.box(x, y, x + w, y + h)
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
        "features": [{"type": "Feature", "properties": {"field_id": 1},
                      "geometry": shapely.geometry.mapping(square)}],
    }  # fmt: skip
    path = tmp_path_factory.mktemp("rt") / "f.geojson"
    path.write_text(json.dumps(doc))
    there = read_fields(path, to_crs="EPSG:4326")
    # areas never come from degrees: equal-area vs UTM planar (scale factor 0.9996..1.0012)
    assert area_ha(there)[0] == pytest.approx(w * h / 1e4, rel=3e-3)
    back = there.to_crs(32633).geometry[0]
    assert shapely.hausdorff_distance(back, square) < 1e-3  # metres


# --------------------------------------------------------------------------- formulas

SYMBOLS = ("N", "R", "G", "B")
ENV = {s: np.linspace(0.01 * (i + 1), 0.9, 7) for i, s in enumerate(SYMBOLS)}


def _leaf():
    numbers = st.floats(0.1, 10, allow_nan=False).map(lambda v: ("num", round(v, 3)))
    return st.sampled_from(SYMBOLS).map(lambda s: ("sym", s)) | numbers


def _tree(children):
    binary = st.tuples(st.sampled_from("+-*/"), children, children)
    power = st.tuples(
        st.just("**"), children, st.sampled_from([0.5, 2, 3, -1]).map(lambda v: ("num", v))
    )
    unary = st.tuples(st.sampled_from(["neg", "exp", "sqrt", "abs", "log"]), children)
    return binary | power | unary


TREES = st.recursive(_leaf(), _tree, max_leaves=12)


def render(t) -> str:
    kind = t[0]
    if kind == "num":
        return repr(t[1])
    if kind == "sym":
        return t[1]
    if kind == "neg":
        return f"-({render(t[1])})"
    if kind in ("exp", "sqrt", "abs", "log"):
        return f"{kind}({render(t[1])})"
    return f"({render(t[1])}) {kind} ({render(t[2])})"


def reference(t):
    """Independent evaluation of the tree (never of the text) in float64."""
    kind = t[0]
    if kind == "num":
        return np.float64(t[1])
    if kind == "sym":
        return ENV[t[1]]
    if kind == "neg":
        return -reference(t[1])
    if kind in ("exp", "sqrt", "abs", "log"):
        return getattr(np, kind)(reference(t[1]))
    a, b = reference(t[1]), reference(t[2])
    return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}[kind](
        a, b
    )


def _uses_band(t) -> bool:
    return t[0] == "sym" or any(_uses_band(c) for c in t[1:] if isinstance(c, tuple))


def _nonfinite_constant(t) -> bool:
    """Whether a band-free subtree evaluates to inf/NaN (the compiler folds and refuses it)."""
    if t[0] in ("num", "sym"):
        return False
    if not _uses_band(t) and not np.isfinite(reference(t)):
        return True
    return any(_nonfinite_constant(c) for c in t[1:] if isinstance(c, tuple))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(TREES)
def test_formula_compiler_matches_reference(tree):
    assume(_uses_band(tree))  # a formula without a band is refused by design (see the corpus)
    text = render(tree)
    with np.errstate(all="ignore"):
        want = np.broadcast_to(reference(tree), (7,))
        if _nonfinite_constant(tree):  # e.g. sqrt(-1): refused when compiled, by design
            with pytest.raises(FormulaError, match="not finite"):
                compile_formula(text)
            return
        got = np.broadcast_to(compile_formula(text)(ENV), (7,))
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)

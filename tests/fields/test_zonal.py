"""zonal_stats: closed-form cases, agreement with exactextract and rasterstats, edge cases."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import shapely
import shapely.affinity
import xarray as xr
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource
from pyproj import CRS

from agrivision.errors import (
    ConfigError,
    FieldsError,
    GridError,
    InvalidGeometryError,
    MissingCRSError,
)
from agrivision.fields import zonal
from agrivision.fields.zonal import zonal_stats

UTM = "EPSG:32633"
EE_OPS = {  # our name -> exactextract's operation and output column
    "count": ("count", "count"),
    "sum": ("sum", "sum"),
    "mean": ("mean", "mean"),
    "std": ("stdev", "stdev"),
    "min": ("min", "min"),
    "max": ("max", "max"),
    "median": ("median", "median"),
    "p10": ("quantile(q=0.1)", "quantile_10"),
    "p90": ("quantile(q=0.9)", "quantile_90"),
}
ALL = [*EE_OPS, "pixel_count", "valid_fraction"]


def grid(values, *, res=1.0, x0=0.0, top=None, crs=UTM, chunks=None, times=None):
    """A north-up DataArray whose cell (r, c) spans x0 + c*res .. and top - r*res downwards."""
    values = np.asarray(values)
    h, w = values.shape[-2:]
    top = h * res if top is None else top
    coords = {"y": top - res * (np.arange(h) + 0.5), "x": x0 + res * (np.arange(w) + 0.5)}
    dims = ("y", "x")
    if values.ndim == 3:
        dims = ("time", "y", "x")
        coords["time"] = times if times is not None else np.arange(values.shape[0])
    da = xr.DataArray(values, dims=dims, coords=coords)
    if crs is not None:
        da = da.rio.write_crs(crs)
    return da if chunks is None else da.chunk(chunks)


def fields_of(geoms, crs=UTM, ids=None):
    ids = np.arange(1, len(geoms) + 1) if ids is None else ids
    return gpd.GeoDataFrame({"field_id": ids}, geometry=list(geoms), crs=crs)


def exactextract_stats(values, fields, *, res=1.0, x0=0.0, top=None, nodata=None):
    """exactextract's statistics of a 2D array (the independent reference)."""
    h, w = values.shape
    top = h * res if top is None else top
    src = NumPyRasterSource(
        np.asarray(values),
        x0,
        top - h * res,
        x0 + w * res,
        top,
        nodata=nodata,
        srs_wkt=CRS(fields.crs).to_wkt(),
    )
    ops = [op for op, _ in EE_OPS.values()]
    df = exact_extract(src, fields, ops, output="pandas")
    return pd.DataFrame({ours: df[col].to_numpy() for ours, (_, col) in EE_OPS.items()})


def assert_matches_exactextract(ours: pd.DataFrame, ref: pd.DataFrame, prefix: str = "") -> None:
    """Means/std/sums to float rounding; quantiles to exactextract's float32 rounding."""
    for stat in EE_OPS:
        tol = 1e-6 if stat in ("median", "p10", "p90") else 1e-8
        np.testing.assert_allclose(
            ours[prefix + stat].to_numpy(), ref[stat].to_numpy(), rtol=1e-7, atol=tol, err_msg=stat
        )


def random_fields(rng, n, *, width, height, res=1.0, margin=3.0):
    """Random star-shaped polygons (some with holes, some multi-part, some partly outside)."""
    geoms = []
    while len(geoms) < n:
        c = rng.uniform([-margin, -margin], [width + margin, height + margin]) * res
        k = rng.integers(3, 10)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.3, 6.0, k) * res
        p = shapely.make_valid(
            shapely.Polygon(np.c_[c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)])
        )
        if rng.random() < 0.3:
            p = p.difference(shapely.Point(c).buffer(0.8 * res))
        if rng.random() < 0.2:
            p = p.union(shapely.box(*(c + 7 * res), *(c + 9.3 * res)))
        if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty:
            geoms.append(p)
    return geoms


# --- closed-form cases (exactextract's own test style: np.arange rasters, hand-drawn shapes) ---


def test_square_with_half_pixel_offsets():
    # 4x4 arange; box covers cells rows 1..3, cols 0..2 with coverage outer([.5,1,.5],[.5,1,.5])
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    df = zonal_stats(grid(values), fields_of([shapely.box(0.5, 0.5, 2.5, 2.5)]), stats=ALL)
    row = df.iloc[0]
    assert row["count"] == pytest.approx(4.0)
    assert row["pixel_count"] == 9
    assert row["mean"] == pytest.approx(9.0)  # symmetric weights around cell (2, 1)
    assert row["min"] == 4.0 and row["max"] == 14.0
    w = np.outer([0.5, 1, 0.5], [0.5, 1, 0.5])
    v = values[1:4, 0:3]
    assert row["sum"] == pytest.approx((w * v).sum())
    assert row["std"] == pytest.approx(np.sqrt((w * (v - 9.0) ** 2).sum() / w.sum()))
    assert row["coverage"] == 1.0 and row["valid_fraction"] == 1.0


def test_triangle_on_diagonal():
    # Triangle (0,0)-(3,0)-(0,3) on a 3x3 grid: cells below the anti-diagonal full, on it half.
    values = np.arange(9, dtype=np.float64).reshape(3, 3)
    df = zonal_stats(
        grid(values),
        fields_of([shapely.Polygon([(0, 0), (3, 0), (0, 3)])]),
        stats=["count", "mean", "min", "max"],
    )
    w = np.array([[0.5, 0, 0], [1, 0.5, 0], [1, 1, 0.5]])
    row = df.iloc[0]
    assert row["count"] == pytest.approx(4.5)
    assert row["mean"] == pytest.approx((w * values).sum() / 4.5)
    assert row["min"] == 0.0 and row["max"] == 8.0


def test_polygon_with_hole_and_multipolygon():
    values = np.arange(36, dtype=np.float32).reshape(6, 6)
    ring = shapely.box(0, 0, 6, 6).difference(shapely.box(2, 2, 4, 4))  # hole = 4 central cells
    multi = shapely.MultiPolygon([shapely.box(0, 5, 1, 6), shapely.box(5, 0, 6, 1)])
    df = zonal_stats(grid(values), fields_of([ring, multi]), stats=["count", "mean"])
    mask = np.ones((6, 6), bool)
    mask[2:4, 2:4] = False
    assert df["count"].tolist() == pytest.approx([32.0, 2.0])
    assert df["mean"].iloc[0] == pytest.approx(values[mask].mean())
    assert df["mean"].iloc[1] == pytest.approx((values[0, 0] + values[5, 5]) / 2)


def test_weighted_quantiles_closed_form():
    # Values 3,1,2,5 with coverage 1,1,1,.5 -> sorted x = 1,2,3,5, w = 1,1,1,.5, n = 4,
    # S_k = k*w_k + (n-1)*sum(w_<k) = 0, 4, 8, 10.5; the q-quantile sits at q*(n-1)*sum(w).
    values = np.array([[3.0, 1.0, 2.0, 5.0]], dtype=np.float32)
    df = zonal_stats(
        grid(values), fields_of([shapely.box(0, 0, 3.5, 1)]), stats=["median", "p25", "p80"]
    )
    assert df["median"].iloc[0] == pytest.approx(2 + (5.25 - 4) / 4 * (3 - 2))
    assert df["p25"].iloc[0] == pytest.approx(1 + 2.625 / 4 * (2 - 1))
    assert df["p80"].iloc[0] == pytest.approx(3 + (8.4 - 8) / 2.5 * (5 - 3))


# --- agreement with exactextract ---------------------------------------------------------------


def reference_stats(values, fields, *, res=1.0, x0=0.0, top=None, qs=(0.5, 0.1, 0.9)):
    """exactextract's definitions in plain numpy, with coverage from shapely cell intersections."""
    h, w = values.shape
    top = h * res if top is None else top
    rr, cc = np.divmod(np.arange(h * w), w)
    cells = shapely.box(x0 + cc * res, top - (rr + 1) * res, x0 + (cc + 1) * res, top - rr * res)
    tree = shapely.STRtree(cells)
    rows = []
    for geom in fields.geometry:
        idx = tree.query(geom)
        cov = shapely.area(shapely.intersection(cells[idx], geom)) / res**2
        v = values.ravel()[idx].astype(np.float64)
        ok = (cov > 0) & ~np.isnan(v)
        x, c = v[ok], cov[ok]
        row = {"count": c.sum(), "sum": (c * x).sum(), "pixel_count": ok.sum()}
        if len(x):
            mean = (c * x).sum() / c.sum()
            xs, inverse = np.unique(x, return_inverse=True)  # ties merged, weights summed
            ws = np.bincount(inverse, weights=c)
            n = len(xs)
            s = np.arange(n) * ws + (n - 1) * np.concatenate([[0], np.cumsum(ws)[:-1]])
            quant = [np.interp(q * (n - 1) * ws.sum(), s, xs) if n > 1 else xs[0] for q in qs]
            row.update(
                mean=mean,
                std=np.sqrt((c * (x - mean) ** 2).sum() / c.sum()),
                min=x.min(),
                max=x.max(),
                median=quant[0],
                p10=quant[1],
                p90=quant[2],
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=[*EE_OPS, "pixel_count"])


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(42)
    h, w, res, x0, top = 60, 80, 10.0, 500000.0, 5800000.0
    values = rng.random((h, w)).astype(np.float32)
    values[rng.random((h, w)) < 0.08] = np.nan
    geoms = random_fields(rng, 120, width=w, height=h, res=res)
    fields = fields_of([shapely.affinity.translate(g, x0, top - h * res) for g in geoms])
    kw = dict(res=res, x0=x0, top=top)
    return values, fields, kw, zonal_stats(grid(values, chunks=-1, **kw), fields, stats=ALL)


def test_random_polygons_chunking_is_exact(random_case):
    values, fields, kw, one = random_case
    small = zonal_stats(grid(values, chunks=7, **kw), fields, stats=ALL)
    pd.testing.assert_frame_equal(one, small)  # identical, not merely close
    assert (one["coverage"] < 1).any() and (one["coverage"] == 1).any()


def test_random_polygons_match_exact_reference(random_case):
    values, fields, kw, ours = random_case
    ref = reference_stats(values, fields, **kw)
    for stat in ref.columns:
        np.testing.assert_allclose(ours[stat], ref[stat], rtol=1e-9, atol=1e-11, err_msg=stat)


def test_random_polygons_match_exactextract(random_case):
    values, fields, kw, ours = random_case
    ref = exactextract_stats(values, fields, **kw)
    for stat in ("count", "sum", "mean", "std"):
        np.testing.assert_allclose(ours[stat], ref[stat], rtol=1e-7, atol=1e-8, err_msg=stat)
    # exactextract occasionally misses a sliver cell (< 1e-7 of a cell, which shapely confirms
    # is covered); min/max/quantiles are compared where both count the same pixels.
    h, w = values.shape
    src = NumPyRasterSource(
        values,
        kw["x0"],
        kw["top"] - h * kw["res"],
        kw["x0"] + w * kw["res"],
        kw["top"],
        srs_wkt=CRS(UTM).to_wkt(),
    )
    n_ee = exact_extract(src, fields, ["values"], output="pandas")["values"].map(len).to_numpy()
    same = ours["pixel_count"].to_numpy() == n_ee
    assert same.mean() > 0.97
    for stat in ("min", "max", "median", "p10", "p90"):
        np.testing.assert_allclose(ours[stat][same], ref[stat][same], atol=1e-6, err_msg=stat)


def test_quantiles_match_exactextract_with_ties():
    rng = np.random.default_rng(7)
    values = (np.round(rng.random((40, 40)) * 8) / 8).astype(np.float32)  # heavy ties
    fields = fields_of(random_fields(rng, 60, width=40, height=40))
    ours = zonal_stats(grid(values, chunks=16), fields, stats=["median", "p10", "p90", "mean"])
    ref = exactextract_stats(values, fields)
    for stat in ("median", "p10", "p90", "mean"):
        np.testing.assert_allclose(ours[stat], ref[stat], atol=1e-6, err_msg=stat)


def test_pixel_aligned_fields_match_rasterstats():
    # Fields on cell edges: coverage is 0 or 1, so pixel-centre tools must agree exactly.
    from rasterio.transform import from_origin
    from rasterstats import zonal_stats as rs_zonal

    rng = np.random.default_rng(3)
    values = rng.random((30, 30))
    boxes = [shapely.box(*rng.integers(0, 15, 2), *rng.integers(16, 30, 2)) for _ in range(10)]
    ours = zonal_stats(grid(values), fields_of(boxes), stats=["mean", "min", "max", "count"])
    ref = rs_zonal(
        boxes, values, affine=from_origin(0, 30, 1, 1), nodata=-999.0, stats="mean min max count"
    )
    for stat in ("mean", "min", "max", "count"):
        np.testing.assert_allclose(ours[stat], [r[stat] for r in ref], rtol=1e-12)


# --- no data, extent, CRS, time, variables -----------------------------------------------------


def test_nan_and_nodata_excluded_and_valid_fraction():
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    values[0, 0] = np.nan
    values[1, 1] = -9999.0
    da = grid(values).rio.write_nodata(-9999.0)
    df = zonal_stats(da, fields_of([shapely.box(0, 2, 2, 4)]), stats=ALL)  # cells (0..1, 0..1)
    row = df.iloc[0]
    assert row["count"] == 2.0 and row["pixel_count"] == 2
    assert row["mean"] == pytest.approx((1 + 4) / 2)
    assert row["valid_fraction"] == pytest.approx(0.5)
    ref = exactextract_stats(values, fields_of([shapely.box(0, 2, 2, 4)]), nodata=-9999.0)
    assert_matches_exactextract(df, ref)


def test_all_nan_field_has_zero_count_and_nan_stats():
    values = np.full((4, 4), np.nan, dtype=np.float32)
    df = zonal_stats(grid(values), fields_of([shapely.box(0, 0, 2, 2)]), stats=ALL)
    row = df.iloc[0]
    assert row["count"] == 0 and row["sum"] == 0 and row["valid_fraction"] == 0
    assert np.isnan(row[["mean", "std", "min", "max", "median"]].astype(float)).all()
    assert row["coverage"] == 1.0


def test_fields_outside_and_partly_outside():
    values = np.ones((4, 4), dtype=np.float32)
    geoms = [shapely.box(10, 10, 12, 12), shapely.box(-2, 0, 2, 2), shapely.box(1, 1, 3, 3)]
    df = zonal_stats(grid(values, chunks=2), fields_of(geoms, ids=["out", "half", "in"]), stats=ALL)
    assert df["field_id"].tolist() == ["out", "half", "in"]  # kept, in input order
    assert df["coverage"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert df["count"].tolist() == pytest.approx([0.0, 4.0, 4.0])
    assert np.isnan(
        df.loc[0, ["mean", "min", "max", "median", "valid_fraction"]].astype(float)
    ).all()
    assert df.loc[1:, "mean"].tolist() == [1.0, 1.0]


def test_fields_in_another_crs_are_reprojected(caplog):
    rng = np.random.default_rng(5)
    values = rng.random((50, 50)).astype(np.float32)
    res, x0, top = 10.0, 500000.0, 5800000.0
    utm = fields_of(
        [
            shapely.affinity.translate(g, x0, top - 500)
            for g in random_fields(rng, 20, width=50, height=50, res=res)
        ]
    )
    da = grid(values, res=res, x0=x0, top=top, chunks=16)
    with caplog.at_level(logging.INFO, logger="agrivision.fields.prepare"):
        wgs = zonal_stats(da, utm.to_crs(4326), stats=["mean", "count"])
    assert "reprojecting 20 fields" in caplog.text
    expected = zonal_stats(da, utm.to_crs(4326).to_crs(UTM), stats=["mean", "count"])
    pd.testing.assert_frame_equal(wgs, expected)
    assert np.abs(wgs["mean"] - zonal_stats(da, utm, stats=["mean"])["mean"]).max() < 1e-3


def test_time_series_reuses_coverage(monkeypatch):
    rng = np.random.default_rng(9)
    cube = rng.random((3, 30, 30)).astype(np.float32)
    cube[1, :10] = np.nan  # a cloudy date
    times = pd.date_range("2024-05-01", periods=3, freq="10D").values
    fields = fields_of(random_fields(rng, 15, width=30, height=30))
    calls = []

    def counting(rings, window):
        calls.append(window)
        return original(rings, window)

    original = zonal._coverage
    monkeypatch.setattr(zonal, "_coverage", counting)
    ds = xr.Dataset({"ndvi": grid(cube, times=times), "evi": grid(cube * 2, times=times)})
    ds = ds.chunk({"time": 1, "y": 12, "x": 12})
    df = zonal_stats(ds, fields, stats=["mean", "valid_fraction"])
    n_windows = len(calls)
    calls.clear()
    zonal_stats(grid(cube[0], chunks=12), fields, stats=["mean"])
    assert n_windows == len(calls)  # once per window, not per date or variable

    assert list(df.columns) == [
        "field_id",
        "time",
        "coverage",
        "ndvi_mean",
        "ndvi_valid_fraction",
        "evi_mean",
        "evi_valid_fraction",
    ]
    assert len(df) == 45 and (df.groupby("field_id").size() == 3).all()
    for t in range(3):
        one = zonal_stats(grid(cube[t]), fields, stats=["mean", "valid_fraction"])
        got = df[df["time"] == times[t]].reset_index(drop=True)
        np.testing.assert_array_equal(got["ndvi_mean"], one["mean"])
        np.testing.assert_array_equal(got["evi_mean"], 2 * one["mean"])  # x2 is exact
        np.testing.assert_array_equal(got["ndvi_valid_fraction"], one["valid_fraction"])
    assert (df[df["time"] == times[1]]["ndvi_valid_fraction"] < 1).any()


def test_band_dim_of_length_one_is_dropped_and_names_are_stats():
    values = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    da = xr.DataArray(
        values,
        dims=("band", "y", "x"),
        coords={"band": [1], "y": 3.5 - np.arange(4), "x": 0.5 + np.arange(4)},
        name="ndvi",
    ).rio.write_crs(UTM)
    df = zonal_stats(da, fields_of([shapely.box(0, 0, 4, 4)]), stats=["mean"])
    assert list(df.columns) == ["field_id", "coverage", "mean"]
    assert df["mean"].iloc[0] == pytest.approx(7.5)


# --- input validation --------------------------------------------------------------------------


def test_raster_without_crs():
    with pytest.raises(MissingCRSError, match="no CRS"):
        zonal_stats(grid(np.ones((3, 3)), crs=None), fields_of([shapely.box(0, 0, 1, 1)]))


def test_fields_without_crs():
    with pytest.raises(MissingCRSError, match="fields"):
        zonal_stats(grid(np.ones((3, 3))), fields_of([shapely.box(0, 0, 1, 1)], crs=None))


@pytest.mark.parametrize(
    "geom",
    [shapely.Point(1, 1), shapely.LineString([(0, 0), (2, 2)]), shapely.Polygon(), None],
)
def test_unusable_geometries(geom):
    fields = fields_of([shapely.box(0, 0, 1, 1), geom])
    with pytest.raises(InvalidGeometryError, match=r"field ids \[2\]"):
        zonal_stats(grid(np.ones((3, 3))), fields)


def test_invalid_polygon_is_repaired():
    # A bow tie: make_valid turns it into its two triangles, 1 + 1 pixel of the 3x3 raster.
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    df = zonal_stats(grid(np.ones((3, 3))), fields_of([bowtie]), stats=["count"])
    assert df["count"].iloc[0] == pytest.approx(2.0)


def test_duplicate_ids():
    with pytest.raises(FieldsError, match="duplicate"):
        zonal_stats(grid(np.ones((3, 3))), fields_of([shapely.box(0, 0, 1, 1)] * 2, ids=[4, 4]))


def test_missing_id_column_is_an_error():
    fields = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], index=[17], crs=UTM)
    with pytest.raises(FieldsError, match="no column 'field_id'"):
        zonal_stats(grid(np.ones((3, 3))), fields, stats=["mean"])


def test_unknown_statistic():
    with pytest.raises(ConfigError, match="'mode'"):
        zonal_stats(grid(np.ones((3, 3))), fields_of([shapely.box(0, 0, 1, 1)]), stats=["mode"])


def test_extra_dimension_rejected():
    da = xr.concat([grid(np.ones((3, 3)))] * 2, dim="band")
    with pytest.raises(GridError, match="band"):
        zonal_stats(da, fields_of([shapely.box(0, 0, 1, 1)]))


def test_variables_on_different_grids_rejected():
    ds = xr.Dataset({"a": grid(np.ones((2, 3, 3))), "b": grid(np.ones((3, 3)))})
    with pytest.raises(GridError, match="'b'"):
        zonal_stats(ds, fields_of([shapely.box(0, 0, 1, 1)]))


# --- class shares (fractions) ------------------------------------------------------------------


def test_class_fractions_equal_indicator_means_and_exactextract(random_case):
    _, fields, kw, _ = random_case
    rng = np.random.default_rng(7)
    classes = rng.integers(0, 5, (60, 80)).astype(np.uint8)  # 0 = background (nodata)
    codes = [1, 2, 3, 4]
    ds = xr.Dataset({"cls": grid(classes, chunks=9, **kw).rio.write_nodata(0)})
    ours = zonal_stats(ds, fields, stats=["mean"], fractions={"cls": codes})
    assert [c for c in ours.columns if "frac" in c] == [f"cls_frac_{k}" for k in codes]
    # Bit for bit the mean of the 0/1 indicator raster of each code (NaN where background).
    indicators = xr.Dataset(
        {
            f"is{k}": grid(np.where(classes == 0, np.nan, classes == k), chunks=9, **kw)
            for k in codes
        }
    )
    means = zonal_stats(indicators, fields, stats=["mean"])
    for k in codes:
        np.testing.assert_array_equal(ours[f"cls_frac_{k}"], means[f"is{k}_mean"])
    # exactextract's frac (shares among the non-nodata pixels), to its float32 coverage.
    h, w = classes.shape
    src = NumPyRasterSource(
        classes, kw["x0"], kw["top"] - h * kw["res"], kw["x0"] + w * kw["res"], kw["top"],
        nodata=0, srs_wkt=CRS(fields.crs).to_wkt(),
    )  # fmt: skip
    ref = exact_extract(src, fields, ["unique", "frac"], output="pandas")
    for i, (unique, frac) in enumerate(zip(ref["unique"], ref["frac"], strict=True)):
        expected = dict(zip(np.asarray(unique).tolist(), np.asarray(frac), strict=True))
        got = [ours.loc[i, f"cls_frac_{k}"] for k in codes]
        if not expected:
            assert np.isnan(got).all()
            continue
        np.testing.assert_allclose(got, [expected.get(k, 0.0) for k in codes], atol=1e-6)


def test_class_fractions_of_a_data_array_and_unknown_variables():
    classes = grid(np.array([[1, 2], [2, 0]], np.uint8)).rio.write_nodata(0).rename("cls")
    field = fields_of([shapely.box(0, 0, 2, 2)])
    out = zonal_stats(classes, field, fractions={"cls": [1, 2, 3]})
    assert out.loc[0, ["frac_1", "frac_2", "frac_3"]].tolist() == pytest.approx([1 / 3, 2 / 3, 0])
    with pytest.raises(ConfigError, match="unknown variable"):
        zonal_stats(xr.Dataset({"a": classes}), field, fractions={"b": [1]})

"""field_raster: pixel-centre rule, chunk invariance, id mapping, reprojection, errors."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
import rioxarray  # noqa: F401 - registers the .rio accessor
import shapely
import xarray as xr
from rasterio.transform import from_origin
from shapely import box

from agrivision.errors import FieldsError, MissingCRSError, NoOverlapError
from agrivision.fields.rasterize import codes_to_ids, field_raster, geojson_like, ids_to_codes

X0, Y0 = 500_000.0, 5_800_000.0
TRANSFORM = from_origin(X0, Y0, 10, 10)


def grid(ny=40, nx=50, chunks=7, times=None) -> xr.DataArray:
    shape = (ny, nx) if times is None else (times, ny, nx)
    dims = ("y", "x") if times is None else ("time", "y", "x")
    coords = {"y": Y0 - 10 * (np.arange(ny) + 0.5), "x": X0 + 10 * (np.arange(nx) + 0.5)}
    arr = xr.DataArray(da.zeros(shape, chunks=chunks, dtype=np.float32), dims=dims, coords=coords)
    return arr.rio.write_crs("EPSG:32633").rio.write_transform(TRANSFORM)


def centre_mask(geom_bounds, ny=40, nx=50):
    """Pixels whose centre lies strictly inside an axis-aligned box (numpy by hand)."""
    xmin, ymin, xmax, ymax = geom_bounds
    xc = X0 + 10 * (np.arange(nx) + 0.5)
    yc = Y0 - 10 * (np.arange(ny) + 0.5)
    return ((yc > ymin) & (yc < ymax))[:, None] & ((xc > xmin) & (xc < xmax))[None, :]


def random_fields(n=60, seed=0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(X0 - 50, X0 + 500, n)
    y = rng.uniform(Y0 - 420, Y0 + 20, n)
    w, h = rng.uniform(3, 120, n), rng.uniform(3, 120, n)
    geoms = [
        box(a, b, a + c, b + d).buffer(4, quad_segs=3)
        for a, b, c, d in zip(x, y, w, h, strict=True)
    ]
    return gpd.GeoDataFrame({"field_id": np.arange(101, 101 + n)}, geometry=geoms, crs=32633)


def test_pixel_centre_rule_and_all_touched():
    bounds = (X0 + 12, Y0 - 243, X0 + 43, Y0 - 117)  # centres of cols 1..3, rows 12..23
    fields = gpd.GeoDataFrame({"field_id": [5]}, geometry=[box(*bounds)], crs=32633)
    out = field_raster(fields, grid())
    assert out.dtype == np.int32 and out.dims == ("y", "x")
    np.testing.assert_array_equal(out.values, np.where(centre_mask(bounds), 5, 0))
    assert (out.values == 5).sum() == 3 * 12
    touched = field_raster(fields, grid(), all_touched=True).values
    assert (touched == 5).sum() == 4 * 14  # cols 1..4, rows 11..24


def test_chunk_invariant_and_equal_to_whole_raster_reference():
    fields = random_fields()
    chunked = field_raster(fields, grid(chunks=7))
    assert chunked.chunks == grid(chunks=7).chunks
    whole = field_raster(fields, grid(chunks=-1)).values
    np.testing.assert_array_equal(chunked.values, whole)
    reference = rasterio.features.rasterize(
        zip(fields.geometry, fields.field_id, strict=True), out_shape=(40, 50), transform=TRANSFORM,
        fill=0, dtype="int32",
    )  # fmt: skip
    np.testing.assert_array_equal(whole, reference)
    assert len(np.unique(whole)) > 20  # the test really has many fields


def test_each_chunk_task_carries_only_its_fields():
    fields = random_fields()
    out = field_raster(fields, grid(chunks=7))
    graph = out.data.__dask_graph__().values()
    payloads = [v for v in graph if isinstance(v, np.ndarray) and v.dtype == object]
    per_chunk = [len(p.flat[0][0]) for p in payloads if p.shape == (1, 1)]
    assert len(per_chunk) == 6 * 8
    assert max(per_chunk) < len(fields) and min(per_chunk) < max(per_chunk)


def test_string_ids_are_mapped_and_kept():
    fields = gpd.GeoDataFrame(
        {"field_id": ["north", "south"]},
        geometry=[box(X0, Y0 - 100, X0 + 100, Y0), box(X0, Y0 - 300, X0 + 100, Y0 - 200)],
        crs=32633,
    )
    out = field_raster(fields, grid())
    assert out.attrs["field_id_map"] == ["north", "south"]
    assert set(np.unique(out.values)) == {0, 1, 2}
    assert out.values[0, 0] == 1 and out.values[25, 0] == 2
    assert list(codes_to_ids(out, np.array([2, 1]))) == ["south", "north"]
    assert list(ids_to_codes(out, ["south", "elsewhere"])) == [2, 0]


@pytest.mark.parametrize("ids", [[0, 7], [-3, 4], [2**40, 1]])
def test_non_positive_or_huge_ints_are_mapped(ids):
    fields = gpd.GeoDataFrame(
        {"field_id": ids},
        geometry=[box(X0, Y0 - 100, X0 + 100, Y0), box(X0, Y0 - 300, X0 + 100, Y0 - 200)],
        crs=32633,
    )
    out = field_raster(fields, grid())
    assert out.attrs["field_id_map"] == ids
    assert out.values[0, 0] == 1 and out.values[25, 0] == 2


def test_positive_int_ids_are_burnt_as_they_are_later_rows_win():
    fields = gpd.GeoDataFrame(
        {"field_id": [42, 7]},
        geometry=[box(X0, Y0 - 100, X0 + 100, Y0), box(X0 + 50, Y0 - 100, X0 + 150, Y0)],
        crs=32633,
    )
    out = field_raster(fields, grid(chunks=3))
    assert "field_id_map" not in out.attrs
    assert list(out.values[0, :16]) == [42] * 5 + [7] * 10 + [0]
    assert codes_to_ids(out, np.array([42])).tolist() == [42]


def test_fields_in_another_crs_are_reprojected():
    bounds = (X0 + 12, Y0 - 243, X0 + 43, Y0 - 117)
    fields = gpd.GeoDataFrame({"field_id": [5]}, geometry=[box(*bounds)], crs=32633)
    out = field_raster(fields.to_crs(4326), grid())
    np.testing.assert_array_equal(out.values, np.where(centre_mask(bounds), 5, 0))


def test_time_dim_ignored_output_is_lazy_and_georeferenced():
    out = field_raster(random_fields(), grid(times=3, chunks=(1, 16, 16)))
    assert isinstance(out.data, da.Array)
    assert out.dims == ("y", "x") and out.chunks == ((16, 16, 8), (16, 16, 16, 2))
    assert out.rio.crs.to_epsg() == 32633
    assert out.rio.transform() == TRANSFORM
    assert out.rio.nodata == 0


def test_errors_name_the_problem():
    fields = random_fields(3)
    with pytest.raises(FieldsError, match="no column 'parcel'"):
        field_raster(fields, grid(), column="parcel")
    with pytest.raises(FieldsError, match="duplicate"):
        field_raster(fields.assign(field_id=[1, 1, 2]), grid())
    with pytest.raises(MissingCRSError, match="fields have no CRS"):
        field_raster(fields.set_crs(None, allow_override=True), grid())
    no_crs = xr.DataArray(np.zeros((4, 4), np.float32), dims=("y", "x"))
    with pytest.raises(MissingCRSError, match="raster has no CRS"):
        field_raster(fields, no_crs)
    with pytest.raises(NoOverlapError, match="none of the 3 fields overlaps the raster"):
        far = fields.set_geometry(fields.geometry.translate(xoff=10_000))
        field_raster(far, grid())


@pytest.mark.parametrize("chunks", [7, 64])
def test_interior_keeps_only_pixels_wholly_inside(chunks):
    # borders 0.3 / 0.6 pixel off the grid, a hole and a second, pixel-aligned field
    outer = box(X0 + 23, Y0 - 306, X0 + 226, Y0 - 14)
    hole = box(X0 + 100, Y0 - 200, X0 + 140, Y0 - 160)  # pixel-aligned: 4 x 4 pixels
    flds = gpd.GeoDataFrame(
        {"field_id": [1, 2]},
        geometry=[outer.difference(hole), box(X0 + 300, Y0 - 300, X0 + 400, Y0 - 200)],
        crs="EPSG:32633",
    )
    full = field_raster(flds, grid(chunks=chunks)).values
    inner = field_raster(flds, grid(chunks=chunks), interior=True).values
    # by hand: field 1 covers columns 3..21 and rows 2..29 wholly, minus the hole
    expected = np.zeros((40, 50), np.int32)
    expected[2:30, 3:22] = 1
    expected[16:20, 10:14] = 0
    expected[20:30, 30:40] = 2  # pixel-aligned: every burnt pixel is wholly inside
    np.testing.assert_array_equal(inner, expected)
    assert ((inner == 0) | (inner == full)).all()
    assert (full == 1).sum() - (inner == 1).sum() == 2 * 28 + 2 * 21  # the edge ring


def test_an_inner_buffer_makes_a_wider_edge():
    flds = gpd.GeoDataFrame(
        {"field_id": [1, 2]},
        geometry=[box(X0 + 20, Y0 - 220, X0 + 220, Y0 - 20), box(X0 + 300, Y0 - 60, X0 + 330, Y0)],
        crs="EPSG:32633",
    )
    inner = field_raster(flds, grid(chunks=7), interior=True, inner_buffer=12.0).values
    expected = np.zeros((40, 50), np.int32)
    expected[4:20, 4:20] = 1  # 12 m in from every side: the first two pixel rings are edge
    np.testing.assert_array_equal(inner, expected)  # field 2 (30 m wide) has no interior left


def test_geojson_like_is_shapelys_geo_interface_and_burns_the_same():
    donut = box(X0 + 20, Y0 - 300, X0 + 300, Y0 - 20).difference(
        box(X0 + 100, Y0 - 200, X0 + 200, Y0 - 100)
    )
    two = shapely.MultiPolygon(
        [box(X0, Y0 - 50, X0 + 50, Y0), box(X0 + 350, Y0 - 390, X0 + 480, Y0 - 310)]
    )
    touching = shapely.GeometryCollection(
        [box(X0 + 310, Y0 - 40, X0 + 330, Y0), shapely.LineString([(X0, Y0), (X0 + 9, Y0 - 9)])]
    )
    geoms = np.array([*random_fields().geometry, donut, two, touching, shapely.Polygon()], object)
    converted = geojson_like(geoms)
    for geom, like in zip(geoms[:-2], converted, strict=False):  # shapely's own, as lists
        ref = geom.__geo_interface__
        assert like["type"] == ref["type"]
        assert shapely.geometry.shape(like).equals_exact(geom, 0)
        assert np.array_equal(np.concatenate(_flat(like)), np.concatenate(_flat(ref)))
    assert converted[-2] is geoms[-2] and converted[-1] is geoms[-1]  # left as they are
    for all_touched in (False, True):
        burnt = [
            rasterio.features.rasterize(
                zip(shapes, range(1, len(geoms)), strict=False),
                out_shape=(40, 50),
                transform=TRANSFORM,
                all_touched=all_touched,
                dtype=np.int32,
            )
            for shapes in (geoms[:-1], converted[:-1])
        ]
        assert np.array_equal(*burnt) and len(np.unique(burnt[0])) > 30


def _flat(geojson: dict) -> list[np.ndarray]:
    rings = geojson["coordinates"]
    if geojson["type"] == "MultiPolygon":
        rings = [ring for polygon in rings for ring in polygon]
    return [np.asarray(ring, float) for ring in rings]

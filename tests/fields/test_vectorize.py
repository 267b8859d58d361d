"""Vectorising class rasters: components, holes, connectivity, chunk seams, fields, simplify.

Reference geometries are unions of pixel squares (shapely), reference areas pixel counts
(numpy) or exactextract coverage fractions, so nothing here trusts GDAL's polygoniser.
"""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import rioxarray
import shapely
import xarray as xr
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasters import SHARED_DATA, geodesic_ha, write_tif
from scipy import ndimage

from agrivision.errors import ConfigError, FieldsError, GridError, MissingCRSError
from agrivision.fields.vectorize import COLUMNS, vectorize, vectorize_batches

X0, Y0, RES = 500000.0, 5800000.0, 10.0
TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y0)
# Areas are geodesic: a 10 m pixel near the zone's central meridian is 0.08 % larger.
PIXEL_HA = geodesic_ha(RES * RES / 1e4, "EPSG:32633", X0, Y0)
FTW = SHARED_DATA / "s2_austria_ftw" / "ftw_model_prediction_bavaria_3class.tif"


def class_raster(arr, chunks=None, *, transform=TRANSFORM, crs="EPSG:32633", nodata=None):
    """A (y, x) DataArray with rioxarray georeferencing, dask-backed when ``chunks``."""
    arr = np.asarray(arr)
    rows, cols = arr.shape
    xs = transform.c + transform.a * (np.arange(cols) + 0.5)
    ys = transform.f + transform.e * (np.arange(rows) + 0.5)
    out = xr.DataArray(arr, dims=("y", "x"), coords={"y": ys, "x": xs}, name="classes")
    out = out.rio.write_crs(crs).rio.write_transform(transform)
    if nodata is not None:
        out = out.rio.write_nodata(nodata)
    if chunks is None:
        return out
    ychunk, xchunk = chunks if isinstance(chunks, tuple) else (chunks, chunks)
    return out.chunk({"y": ychunk, "x": xchunk})


def pixels_geometry(mask, transform=TRANSFORM):
    """Union of the squares of the True pixels, in world coordinates (the reference)."""
    rows, cols = np.nonzero(mask)
    x = transform.c + transform.a * cols
    y = transform.f + transform.e * rows
    boxes = shapely.box(x, y + transform.e, x + transform.a, y)
    return shapely.union_all(boxes)


def blobs(shape, seed, n_classes=4, sigma=2.5):
    """Seeded smooth random classes 0..n_classes (0 = background)."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    edges = np.quantile(noise, np.linspace(0, 1, n_classes + 2)[1:-1])
    return np.digitize(noise, edges).astype(np.uint8)


def dissolved(gdf, keys):
    return gdf.dissolve(keys).geometry


def assert_same_dissolved(a, b, keys, tol=1e-6):
    da_, db = dissolved(a, keys), dissolved(b, keys)
    assert list(da_.index) == list(db.index)
    diff = shapely.area(shapely.symmetric_difference(da_.values, db.reindex(da_.index).values))
    assert diff.max() <= tol


# --------------------------------------------------------------------------- components


def test_l_shape_is_one_polygon_with_exact_geometry_and_area():
    arr = np.zeros((6, 6), np.uint8)
    arr[1:5, 1] = 2
    arr[4, 1:4] = 2  # L: 4 + 2 pixels
    out = vectorize(class_raster(arr))
    assert list(out.columns) == ["class", "class_name", "area_ha", "geometry"]
    assert len(out) == 1
    row = out.iloc[0]
    assert row["class"] == 2 and row["class_name"] == "stressed"
    assert row["area_ha"] == pytest.approx(6 * PIXEL_HA, rel=1e-7)
    assert row.geometry.geom_type == "Polygon"
    assert shapely.equals(row.geometry, pixels_geometry(arr == 2))
    assert out.crs == pyproj.CRS("EPSG:32633")
    # pixel (row 1, col 1) has its top-left corner at (X0 + 10, Y0 - 10)
    assert row.geometry.bounds == (X0 + 10, Y0 - 50, X0 + 40, Y0 - 10)


def test_ring_keeps_its_hole_and_the_island_inside():
    arr = np.zeros((7, 7), np.uint8)
    arr[1:6, 1:6] = 1
    arr[2:5, 2:5] = 0
    arr[3, 3] = 3  # island of another class inside the hole
    out = vectorize(class_raster(arr))
    assert list(out["class"]) == [1, 3]
    ring, island = out.geometry
    assert len(ring.interiors) == 1
    assert ring.area == pytest.approx(16 * RES * RES)
    assert shapely.equals(ring, pixels_geometry(arr == 1))
    assert shapely.Polygon(ring.interiors[0]).area == pytest.approx(9 * RES * RES)
    assert island.area == pytest.approx(RES * RES)


@pytest.mark.parametrize("chunks", [None, 2])
def test_diagonal_pixels_split_with_4_and_join_with_8_connectivity(chunks):
    arr = np.zeros((4, 4), np.uint8)
    arr[0, 0] = arr[1, 1] = arr[2, 2] = 3  # diagonal chain, crossing chunk corners when chunks=2
    four = vectorize(class_raster(arr, chunks), connectivity=4)
    eight = vectorize(class_raster(arr, chunks), connectivity=8)
    assert len(four) == 3 and (four.geom_type == "Polygon").all()
    assert len(eight) == 1 and eight.geom_type.iloc[0] == "MultiPolygon"
    assert eight.is_valid.all()
    assert four.area_ha.sum() == pytest.approx(eight.area_ha.sum()) == pytest.approx(3 * PIXEL_HA)
    assert shapely.equals(eight.geometry.iloc[0], pixels_geometry(arr == 3))


def test_component_spanning_four_chunks_is_merged_with_its_hole():
    arr = np.zeros((16, 16), np.uint8)
    arr[4:12, 4:12] = 2
    arr[7:9, 7:9] = 0  # hole centred on the corner shared by all four 8x8 chunks
    single = vectorize(class_raster(arr))
    chunked = vectorize(class_raster(arr, 8))
    assert len(single) == len(chunked) == 1
    geom = chunked.geometry.iloc[0]
    assert geom.geom_type == "Polygon" and len(geom.interiors) == 1
    assert shapely.equals(geom, pixels_geometry(arr == 2))
    assert chunked.area_ha.iloc[0] == pytest.approx(60 * PIXEL_HA, rel=1e-7)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_holes_away_from_seams_survive_the_merge(connectivity):
    arr = np.zeros((12, 16), np.uint8)
    arr[1:11, 1:15] = 1  # crosses the seam at column 8
    arr[3:8, 2:6] = 0  # hole inside the left chunk
    arr[5, 3] = 1  # island in that hole: its own polygon
    arr[2:4, 10:12] = 2  # a hole of another class in the right chunk
    single = vectorize(class_raster(arr), connectivity=connectivity)
    chunked = vectorize(class_raster(arr, (12, 8)), connectivity=connectivity)
    assert len(chunked) == len(single) == 3
    big = chunked.geometry.iloc[0]
    ring = arr == 1
    ring[5, 3] = False
    assert len(big.interiors) == 2
    assert shapely.equals(big, pixels_geometry(ring))
    assert chunked.area_ha.iloc[0] == pytest.approx(ring.sum() * PIXEL_HA, rel=1e-7)


def test_holes_go_to_their_own_part_of_a_corner_joined_polygon():
    arr = np.zeros((10, 10), np.uint8)
    arr[0:5, 0:5] = arr[5:10, 5:10] = 3  # two squares meeting at the corner of 4 chunks
    arr[2, 2] = arr[7, 7] = 0
    out = vectorize(class_raster(arr, 5), connectivity=8)
    assert len(out) == 1
    geom = out.geometry.iloc[0]
    assert geom.geom_type == "MultiPolygon" and geom.is_valid
    assert [len(p.interiors) for p in geom.geoms] == [1, 1]
    assert shapely.equals(geom, pixels_geometry(arr == 3))
    assert len(vectorize(class_raster(arr, 5), connectivity=4)) == 2


def test_only_the_chunk_at_hand_is_read():
    """Each task sees one chunk: the raster is never assembled in memory."""
    seen = []

    def record(block):
        seen.append(block.shape)
        return block

    arr = blobs((64, 64), seed=3)
    lazy = class_raster(arr, 16)
    lazy = lazy.copy(data=da.map_blocks(record, lazy.data, dtype=lazy.dtype))
    out = vectorize(lazy)
    assert seen and max(seen) == (16, 16)
    assert out.area_ha.sum() == pytest.approx((arr > 0).sum() * PIXEL_HA, rel=1e-7)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_equals_single_chunk_and_areas_are_pixel_counts(seed, connectivity):
    arr = blobs((96, 80), seed)
    single = vectorize(class_raster(arr), connectivity=connectivity)
    chunked = vectorize(class_raster(arr, (32, 20)), connectivity=connectivity)
    assert len(single) == len(chunked)
    attrs = ["class", "area_ha"]
    np.testing.assert_allclose(single[attrs].to_numpy(), chunked[attrs].to_numpy(), rtol=1e-9)
    assert_same_dissolved(single, chunked, "class", tol=0.0)
    assert chunked.is_valid.all()
    for c in range(1, 5):
        expected = (arr == c).sum() * PIXEL_HA
        assert chunked.loc[chunked["class"] == c, "area_ha"].sum() == pytest.approx(
            expected, rel=1e-7
        )
    # every polygon is one connected component, so the counts match scipy's labelling
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    components = sum(ndimage.label(arr == c, structure)[1] for c in range(1, 5))
    assert len(chunked) == components


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(2, 14), st.integers(2, 14)),
    chunks=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    n_classes=st.integers(1, 3),
    connectivity=st.sampled_from([4, 8]),
)
def test_any_chunking_of_noisy_classes_matches_the_labelling(
    seed, shape, chunks, n_classes, connectivity
):
    """Salt-and-pepper rasters put every corner case on the seams (holes, pinches, corners)."""
    arr = np.random.default_rng(seed).integers(0, n_classes + 1, shape).astype(np.uint8)
    chunked = vectorize(class_raster(arr, chunks), connectivity=connectivity)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    assert len(chunked) == sum(ndimage.label(arr == c, structure)[1] for c in range(1, 4))
    assert chunked.is_valid.all()
    for c in range(1, n_classes + 1):
        mine = chunked.geometry[chunked["class"] == c]
        if (arr == c).any():
            assert shapely.equals(shapely.union_all(mine.values), pixels_geometry(arr == c))
            assert mine.area.sum() == pytest.approx((arr == c).sum() * RES * RES, rel=1e-7)


def test_nodata_value_and_background_are_never_vectorised():
    arr = np.array([[0, 1, 1], [255, 255, 2], [2, 2, 2]], np.uint8)
    out = vectorize(class_raster(arr, nodata=255))
    assert list(out["class"]) == [1, 2]
    assert out.area_ha.sum() == pytest.approx(6 * PIXEL_HA)


def test_float_raster_with_nan_is_read_as_classes():
    arr = np.array([[np.nan, 1, 1], [2, 2, np.nan]], np.float32)
    out = vectorize(class_raster(arr, 1))
    assert list(out["class"]) == [1, 2]
    assert list(out.area_ha) == pytest.approx([2 * PIXEL_HA, 2 * PIXEL_HA])


def test_classes_to_keep_and_class_names():
    arr = blobs((40, 40), seed=5)
    out = vectorize(class_raster(arr, 16), classes_to_keep=[2, 3], class_names={2: "low"})
    assert set(out["class"]) == {2, 3}
    assert set(out.loc[out["class"] == 2, "class_name"]) == {"low"}
    assert out.loc[out["class"] == 3, "class_name"].isna().all()
    default = vectorize(class_raster(arr, 16), classes_to_keep=[3])  # the schema's labels
    assert set(default["class_name"]) == {"anomaly – scout here"}


def test_min_area_drops_small_polygons_after_seam_merging():
    arr = np.zeros((8, 8), np.uint8)
    arr[3:5, 2:6] = 1  # 8 pixels, split 4 + 4 by the seam at column 4
    arr[0, 0] = 1  # 1 pixel
    out = vectorize(class_raster(arr, 4), min_area_ha=5 * PIXEL_HA)
    assert len(out) == 1
    assert out.area_ha.iloc[0] == pytest.approx(8 * PIXEL_HA)
    all_ = vectorize(class_raster(arr, 4))
    assert len(all_) == 2


def test_empty_result_warns_and_has_columns_and_crs():
    arr = np.zeros((5, 5), np.uint8)
    with pytest.warns(UserWarning, match="output is empty"):
        out = vectorize(class_raster(arr, 2))
    assert out.empty and list(out.columns) == ["class", "class_name", "area_ha", "geometry"]
    assert out.crs == pyproj.CRS("EPSG:32633")
    arr[1, 1] = 1
    fields = gpd.GeoDataFrame({"field_id": [7]}, geometry=[shapely.box(X0, Y0 - 50, X0 + 50, Y0)])
    with pytest.warns(UserWarning, match="output is empty"):
        out = vectorize(class_raster(arr), fields.set_crs(32633), classes_to_keep=[2])
    assert list(out.columns) == ["field_id", "class", "class_name", "area_ha", "geometry"]
    far = fields.set_crs(32633)
    far.geometry = far.geometry.translate(xoff=1e5)
    with pytest.warns(UserWarning, match="none of the 1 field"):
        vectorize(class_raster(arr, 2), far)


# --------------------------------------------------------------------------- fields


def two_fields(split_col, rows=20, cols=20, crs=32633):
    """Two adjacent fields covering the raster, meeting at pixel column ``split_col``."""
    xs = X0 + RES * split_col
    return gpd.GeoDataFrame(
        {"field_id": ["west", "east"]},
        geometry=[
            shapely.box(X0, Y0 - RES * rows, xs, Y0),
            shapely.box(xs, Y0 - RES * rows, X0 + RES * cols, Y0),
        ],
        crs=crs,
    )


@pytest.mark.parametrize("chunks", [None, 7])
def test_adjacent_fields_split_a_component_and_areas_add_up(chunks):
    arr = np.zeros((20, 20), np.uint8)
    arr[5:15, 3:17] = 2
    out = vectorize(class_raster(arr, chunks), two_fields(10))
    assert list(out["field_id"]) == ["west", "east"]
    assert list(out.area_ha) == pytest.approx([70 * PIXEL_HA, 70 * PIXEL_HA], rel=1e-7)
    assert out.area_ha.sum() == pytest.approx((arr == 2).sum() * PIXEL_HA, rel=1e-7)
    west, east = out.geometry
    assert shapely.equals(west, pixels_geometry((arr == 2) & (np.arange(20) < 10)))
    assert west.intersection(east).length == pytest.approx(10 * RES)  # they share the border


def test_fields_aligned_with_pixels_give_exact_counts_per_field():
    arr = blobs((40, 40), seed=7)
    fields = two_fields(13, 40, 40)
    single = vectorize(class_raster(arr), fields)
    chunked = vectorize(class_raster(arr, 16), fields)
    assert len(single) == len(chunked)
    assert_same_dissolved(single, chunked, ["field_id", "class"], tol=0.0)
    sums = chunked.groupby(["field_id", "class"]).area_ha.sum()
    for fid, cols in (("west", slice(0, 13)), ("east", slice(13, 40))):
        for c in range(1, 5):
            expected = (arr[:, cols] == c).sum() * PIXEL_HA
            assert sums[(fid, c)] == pytest.approx(expected, rel=1e-7)


def test_fields_aligned_up_to_rounding_leave_no_slivers():
    arr = np.where(np.arange(40) < 13, 1, 2).astype(np.uint8)[None].repeat(40, axis=0)
    nearly = two_fields(13, 40, 40)
    nearly.geometry = nearly.geometry.translate(xoff=1e-7)  # borders 1e-8 px off pixel edges
    out = vectorize(class_raster(arr, 16), nearly)
    assert list(zip(out["field_id"], out["class"], strict=True)) == [("west", 1), ("east", 2)]
    assert list(out.area_ha) == pytest.approx([13 * 40 * PIXEL_HA, 27 * 40 * PIXEL_HA])


def test_unaligned_fields_match_exactextract_coverage(tmp_path):
    exactextract = pytest.importorskip("exactextract")
    arr = blobs((48, 48), seed=11)
    fields = gpd.GeoDataFrame(
        {"field_id": [1, 2]},
        geometry=[
            shapely.Point(X0 + 133.3, Y0 - 171.7).buffer(97.1),
            shapely.Polygon([(X0 + 255, Y0 - 40), (X0 + 470, Y0 - 95), (X0 + 300, Y0 - 430)]),
        ],
        crs=32633,
    )
    single = vectorize(class_raster(arr), fields)
    chunked = vectorize(class_raster(arr, (13, 17)), fields)
    assert len(single) == len(chunked)
    assert_same_dissolved(single, chunked, ["field_id", "class"], tol=1e-6)
    assert chunked.is_valid.all()
    # reference: class c's area in a field = sum of exact pixel coverage fractions x pixel area
    tif = write_tif(tmp_path / "c.tif", (arr[None] == np.arange(1, 5)[:, None, None]).astype("f4"))
    ref = exactextract.exact_extract(
        str(tif), fields, "sum", include_cols=["field_id"], output="pandas"
    ).set_index("field_id")
    sums = chunked.groupby(["field_id", "class"]).area_ha.sum()
    for fid in (1, 2):
        for c in range(1, 5):
            expected = ref.loc[fid, f"band_{c}_sum"] * PIXEL_HA
            assert sums.get((fid, c), 0.0) == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_fields_in_another_crs_are_reprojected():
    arr = np.zeros((20, 20), np.uint8)
    arr[5:15, 3:17] = 2
    utm = vectorize(class_raster(arr), two_fields(10))
    lonlat = vectorize(class_raster(arr, 6), two_fields(10).to_crs(4326))
    assert lonlat.crs == utm.crs
    assert list(lonlat.area_ha) == pytest.approx(list(utm.area_ha), rel=1e-9)


@pytest.mark.parametrize("chunks", [None, 2])
def test_8_connectivity_keeps_corner_joined_pieces_of_a_field_together(chunks):
    arr = np.zeros((6, 6), np.uint8)
    arr[1, 1] = arr[2, 2] = arr[3, 3] = 4
    field = gpd.GeoDataFrame(
        {"field_id": ["f"]}, geometry=[shapely.box(X0, Y0 - 60, X0 + 60, Y0)], crs=32633
    )
    eight = vectorize(class_raster(arr, chunks), field, connectivity=8)
    four = vectorize(class_raster(arr, chunks), field, connectivity=4)
    assert len(eight) == 1 and len(four) == 3
    assert eight.area_ha.iloc[0] == pytest.approx(3 * PIXEL_HA)


# --------------------------------------------------------------------------- simplify


@pytest.mark.parametrize("with_fields", [False, True])
def test_coverage_simplify_leaves_no_gaps_or_overlaps(with_fields):
    arr = blobs((60, 60), seed=9)
    fields = two_fields(27, 60, 60) if with_fields else None
    raw = vectorize(class_raster(arr, 25), fields)
    simple = vectorize(class_raster(arr, 25), fields, simplify=15.0)
    geoms = simple.geometry.to_numpy()
    assert simple.is_valid.all()
    # area_ha is the exact, unsimplified area
    np.testing.assert_array_equal(simple.area_ha.to_numpy(), raw.area_ha.to_numpy())
    assert (
        shapely.get_num_coordinates(geoms).sum()
        < 0.7 * shapely.get_num_coordinates(raw.geometry.to_numpy()).sum()
    )
    # no overlaps: pairwise intersections have no area, so the union area is the sum
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    assert overlap.max() < 1e-6
    union = shapely.union_all(geoms).area
    assert union == pytest.approx(shapely.area(geoms).sum(), rel=1e-9)
    # no gaps: the simplified coverage covers (almost) what the pixels covered
    assert union == pytest.approx(shapely.union_all(raw.geometry.to_numpy()).area, rel=0.02)
    assert shapely.coverage_is_valid(geoms)


# --------------------------------------------------------------------------- CRS and errors


def test_geographic_raster_areas_are_in_hectares():
    transform = Affine(0.001, 0, 10.0, 0, -0.001, 0.002)  # 2 rows just north of the equator
    arr = np.array([[1, 1, 0], [1, 0, 0]], np.uint8)
    out = vectorize(class_raster(arr, transform=transform, crs="EPSG:4326"))
    geod = pyproj.Geod(ellps="WGS84")
    expected = abs(geod.geometry_area_perimeter(out.geometry.iloc[0])[0]) / 1e4
    assert out.area_ha.iloc[0] == pytest.approx(expected, rel=1e-3)  # ~3 x 1.23 ha
    with pytest.raises(ConfigError, match="geographic"):
        vectorize(class_raster(arr, transform=transform, crs="EPSG:4326"), simplify=5)


def test_errors_are_specific():
    arr = np.ones((4, 4), np.uint8)
    with pytest.raises(MissingCRSError):
        vectorize(xr.DataArray(arr, dims=("y", "x")))
    stacked = xr.concat([class_raster(arr)] * 2, dim="time")
    with pytest.raises(GridError, match="isel"):
        vectorize(stacked)
    with pytest.raises(ConfigError, match="connectivity"):
        vectorize(class_raster(arr), connectivity=6)
    with pytest.raises(ConfigError, match="background"):
        vectorize(class_raster(arr), classes_to_keep=[0, 1])
    with pytest.raises(ConfigError, match="min_area_ha"):
        vectorize(class_raster(arr), min_area_ha=-1)
    no_id = gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.box(X0, Y0 - 40, X0 + 40, Y0)])
    with pytest.raises(FieldsError, match="field_id"):
        vectorize(class_raster(arr), no_id.set_crs(32633))
    with pytest.raises(MissingCRSError):
        vectorize(class_raster(arr), no_id.rename(columns={"name": "field_id"}))


def test_band_dimension_of_size_one_is_dropped():
    arr = np.zeros((1, 4, 4), np.uint8)
    arr[0, 1:3, 1:3] = 1
    raster = class_raster(arr[0]).expand_dims(band=[1])
    out = vectorize(raster)
    assert out.area_ha.tolist() == pytest.approx([4 * PIXEL_HA])


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
@pytest.mark.parametrize("connectivity", [4, 8])
def test_ftw_prediction_chunked_equals_unchunked(shared_data, connectivity):
    if not FTW.exists():
        pytest.skip(f"{FTW} is not available")
    raster = rioxarray.open_rasterio(FTW)
    names = {1: "field", 2: "boundary"}
    single = vectorize(raster, class_names=names, connectivity=connectivity)
    chunked = vectorize(
        rioxarray.open_rasterio(FTW, chunks={"x": 64, "y": 64}),
        class_names=names,
        connectivity=connectivity,
    )
    assert len(single) == len(chunked) > 100
    assert_same_dissolved(single, chunked, "class", tol=0.0)
    values = raster.values[0]
    res = abs(raster.rio.resolution()[0])
    (x0, y0, x1, y1), crs = raster.rio.bounds(), raster.rio.crs
    for c in (1, 2):
        # geodesic: pixel counts x pixel area, scaled at the raster's centre (a few km across)
        expected = geodesic_ha(
            (values == c).sum() * res * res / 1e4, crs, (x0 + x1) / 2, (y0 + y1) / 2
        )
        assert chunked.loc[chunked["class"] == c, "area_ha"].sum() == pytest.approx(
            expected, rel=1e-5
        )
    assert set(chunked["class_name"]) == {"field", "boundary"}


# --------------------------------------------------------------------------- batches


def grid_fields(n_rows, n_cols, size, offset=0.37):
    """A grid of square fields of ``size`` pixels, shifted off the pixel edges by ``offset``
    pixels (so borders cut pixels), in a shuffled (seeded) input order."""
    boxes = [
        shapely.box(
            X0 + RES * (j * size + offset),
            Y0 - RES * ((i + 1) * size + offset),
            X0 + RES * ((j + 1) * size + offset),
            Y0 - RES * (i * size + offset),
        )
        for i in range(n_rows)
        for j in range(n_cols)
    ]
    order = np.random.default_rng(3).permutation(len(boxes))
    return gpd.GeoDataFrame(
        {"field_id": [f"f{k}" for k in order]}, geometry=[boxes[k] for k in order], crs=32633
    )


@pytest.mark.parametrize("connectivity", [4, 8])
def test_batches_hold_the_same_polygons_per_field_as_one_call(connectivity):
    arr = blobs((60, 60), seed=4)
    fields = grid_fields(4, 4, 14)  # fields cross chunk rows (8 px) and strips (16 px)
    classes = class_raster(arr, 8)
    whole = vectorize(classes, fields, connectivity=connectivity, min_area_ha=0.02)
    batches = list(
        vectorize_batches(classes, fields, connectivity=connectivity, min_area_ha=0.02, rows=16)
    )
    assert len(batches) > 1
    joined = pd.concat(batches, ignore_index=True)
    # Same rows, same exact geometries; each field's rows in vectorize's order.
    position = {fid: k for k, fid in enumerate(fields["field_id"])}
    ordered = joined.iloc[np.argsort(joined["field_id"].map(position), kind="stable")]
    pd.testing.assert_frame_equal(
        ordered.drop(columns="geometry").reset_index(drop=True),
        whole.drop(columns="geometry").reset_index(drop=True),
    )
    assert list(ordered.geometry.to_wkb()) == list(whole.geometry.to_wkb())
    # A field is handed over once, whole: in exactly one batch.
    owners = [set(b["field_id"]) for b in batches]
    assert sum(len(o) for o in owners) == len(set().union(*owners))


def test_batches_read_each_chunk_once():
    arr = blobs((40, 40), seed=5)
    reads = []

    def spy(block, block_info=None):
        reads.append(tuple(block_info[0]["chunk-location"]))
        return block

    classes = class_raster(arr, 10)
    classes = classes.copy(data=classes.data.map_blocks(spy, dtype=arr.dtype))
    batches = list(vectorize_batches(classes, grid_fields(3, 3, 13), rows=10))
    assert len(batches) > 1
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 16


def test_batches_with_simplify_are_one_batch_and_empty_results_warn():
    arr = blobs((30, 30), seed=6)
    fields = grid_fields(2, 2, 14)
    batches = list(vectorize_batches(class_raster(arr, 8), fields, simplify=15.0, rows=8))
    assert len(batches) == 1
    pd.testing.assert_frame_equal(
        batches[0], vectorize(class_raster(arr, 8), fields, simplify=15.0)
    )
    with pytest.warns(UserWarning, match="the output is empty"):
        (empty,) = vectorize_batches(class_raster(np.zeros((30, 30), np.uint8), 8), fields, rows=8)
    assert empty.empty and list(empty.columns) == ["field_id", *COLUMNS[1:]]
    with pytest.raises(FieldsError):
        next(vectorize_batches(class_raster(arr, 8), None))

"""The boundary tracer against GDAL's polygoniser (``rasterio.features.shapes``), the spec.

Every case compares, polygon by polygon: the count, the label values, the point sets
(symmetric difference of area exactly 0), the vertex count (collinear vertices dropped as
GDAL drops them) and OGC validity. Areas are also checked against pixel counts, which do not
depend on GDAL.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.features
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from shapely.geometry import shape

from agrivision.errors import GridError
from agrivision.fields.trace import label_polygons

IDENTITY = Affine.identity()
UTM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5800000.0)
TRANSFORMS = {
    "identity": IDENTITY,
    "utm": UTM,
    "south-up": Affine(10.0, 0.0, 500000.0, 0.0, 10.0, 5800000.0),
    "non-square": Affine(0.25, 0.0, 12.5, 0.0, -3.0, 48.0),
    "rotated-sheared": Affine(2.0, 0.7, 100.0, -0.4, -1.5, 50.0),
}


def assert_same_as_gdal(labels, transform=IDENTITY, mask=None):
    """Assert that ``label_polygons`` equals ``shapes(connectivity=4)``; return the count."""
    geoms, values = label_polygons(labels, transform, mask)
    found = rasterio.features.shapes(labels, mask=mask, connectivity=4, transform=transform)
    ref = [(shape(g), v) for g, v in found]
    assert len(geoms) == len(values) == len(ref)
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON).all()
    tree = shapely.STRtree(geoms)
    matched = set()
    for poly, value in ref:
        hit = tree.query(shapely.point_on_surface(poly), predicate="within")
        assert len(hit) == 1
        ours = geoms[hit[0]]
        matched.add(int(hit[0]))
        assert values[hit[0]] == value
        assert shapely.symmetric_difference(ours, poly).area == 0
        assert shapely.get_num_interior_rings(ours) == shapely.get_num_interior_rings(poly)
        assert shapely.get_num_coordinates(ours) == shapely.get_num_coordinates(poly)
    assert len(matched) == len(ref)
    # areas are pixel counts times the pixel's area, whatever the polygoniser
    pixel = abs(transform.determinant)
    valid = np.ones(labels.shape, bool) if mask is None else mask
    assert shapely.area(geoms).sum() == pytest.approx(valid.sum() * pixel, rel=1e-12)
    return len(geoms)


def test_checkerboard_is_one_square_per_pixel():
    board = (np.indices((7, 9)).sum(axis=0) % 2).astype(np.uint8)
    assert assert_same_as_gdal(board) == 63


def test_region_meeting_itself_diagonally_encloses_a_hole_touching_the_exterior():
    labels = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.uint8)
    assert assert_same_as_gdal(labels) == 3
    geoms, values = label_polygons(labels, Affine.identity())
    ring = geoms[values == 1][0]
    # the enclosed pixel is a hole whose corner touches the outer ring at (1, 2)
    assert shapely.get_num_interior_rings(ring) == 1
    assert ring.area == 7
    assert shapely.intersection(ring.exterior, ring.interiors[0]).equals(shapely.Point(1, 2))


def test_diagonal_pixels_of_one_class_are_separate_regions():
    labels = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    geoms, values = label_polygons(labels, Affine.identity())
    assert sorted(values.tolist()) == [0, 0, 1, 1]
    assert (shapely.area(geoms) == 1).all()
    assert_same_as_gdal(labels)


def test_holes_in_holes():
    labels = np.zeros((11, 11), dtype=np.int32)
    labels[1:10, 1:10] = 1
    labels[3:8, 3:8] = 2
    labels[5, 5] = 3
    assert assert_same_as_gdal(labels) == 4
    geoms, values = label_polygons(labels, Affine.identity())
    areas = dict(zip(values.tolist(), shapely.area(geoms).tolist(), strict=True))
    assert areas == {0: 121 - 81, 1: 81 - 25, 2: 25 - 1, 3: 1}
    assert shapely.get_num_interior_rings(geoms).tolist() == [1, 1, 1, 0]


def test_one_pixel_regions_and_rasters_touching_every_edge():
    assert assert_same_as_gdal(np.array([[7]], dtype=np.uint8)) == 1
    assert assert_same_as_gdal(np.arange(12, dtype=np.int16).reshape(3, 4)) == 12
    assert assert_same_as_gdal(np.ones((1, 5), dtype=np.uint16)) == 1
    assert assert_same_as_gdal(np.array([[1], [2], [1]], dtype=np.uint8)) == 3


def test_mask_and_nodata_pixels_belong_to_no_polygon():
    labels = np.array([[1, 1, 1, 2], [1, 9, 1, 2], [1, 1, 1, 9], [2, 2, 2, 2]], dtype=np.uint8)
    mask = labels != 9  # 9: nodata
    assert assert_same_as_gdal(labels, UTM, mask) == 3
    geoms, values = label_polygons(labels, UTM, mask)
    assert values.tolist() == [1, 2, 2]  # the masked pixel at (2, 3) splits the 2s
    assert shapely.get_num_interior_rings(geoms[values == 1]).tolist() == [1]
    nothing = label_polygons(labels, UTM, np.zeros(labels.shape, bool))
    assert len(nothing[0]) == len(nothing[1]) == 0


def test_boolean_rasters():
    labels = np.array([[True, False], [True, True]])
    geoms, values = label_polygons(labels, Affine.identity())
    assert values.tolist() == [1, 0] and shapely.area(geoms).tolist() == [3, 1]


@pytest.mark.parametrize("name", TRANSFORMS)
def test_any_transform(name):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (13, 17)).astype(np.uint8)
    mask = rng.random(labels.shape) < 0.85
    assert assert_same_as_gdal(labels, TRANSFORMS[name], mask) > 30


@pytest.mark.parametrize("seed", range(4))
def test_smooth_classes_with_speckle(seed):
    """Classifier-like output: blobs of many sizes with holes, plus single-pixel speckle."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((160, 140)), 4)
    labels = np.digitize(noise, np.quantile(noise, [0.2, 0.5, 0.7, 0.9])).astype(np.uint8)
    speckle = rng.random(labels.shape) < 0.01
    labels[speckle] = rng.integers(0, 5, speckle.sum())
    assert assert_same_as_gdal(labels, UTM, labels > 0) > 100


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=st.integers(0, 2)
    ),
    st.integers(0, 2**32 - 1),
)
def test_random_rasters_equal_gdal(labels, seed):
    mask = np.random.default_rng(seed).random(labels.shape) < 0.8
    assert_same_as_gdal(labels, UTM, mask)
    assert_same_as_gdal(labels)


@pytest.mark.realdata
def test_ftw_field_raster_equals_gdal(shared_data):
    with rasterio.open(
        shared_data / "s2_austria_ftw" / "ftw_model_prediction_bavaria_3class.tif"
    ) as src:
        labels, transform = src.read(1), src.transform
    assert assert_same_as_gdal(labels, transform, labels > 0) > 10


def test_bad_shapes_are_refused():
    with pytest.raises(GridError, match="not \\(rows, columns\\)"):
        label_polygons(np.zeros((2, 2, 2)), Affine.identity())
    with pytest.raises(GridError, match="mask shape"):
        label_polygons(np.zeros((2, 2)), Affine.identity(), np.ones((3, 2), bool))

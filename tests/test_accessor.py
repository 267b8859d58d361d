"""``.agri`` returns exactly what the free function returns, on a small synthetic scene."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray
import xarray as xr

import agrivision  # noqa: F401  (registers .agri)
from agrivision.fields.vectorize import vectorize
from agrivision.fields.zonal import zonal_stats
from agrivision.health import classify, zones
from agrivision.indices import compute
from agrivision.io.cog import to_cog
from agrivision.masks import apply_mask, valid_fraction, valid_mask
from agrivision.synthetic import synthetic_scene


def _read(path) -> xr.DataArray:
    raster = rioxarray.open_rasterio(path)
    assert isinstance(raster, xr.DataArray)
    return raster.load()


@pytest.fixture(scope="module")
def scene_and_fields() -> tuple[xr.Dataset, gpd.GeoDataFrame]:
    scene, truth = synthetic_scene(7, shape=(96, 128), chunks=64, clouds=True)
    return scene, truth.fields[["field_id", "geometry"]]


@pytest.fixture(scope="module")
def ndvi_classes(scene_and_fields):
    scene, fields = scene_and_fields
    indices = compute(apply_mask(scene), ["NDVI", "NDRE"])
    return indices, classify(indices, fields, min_pixels=5).compute()


def test_dataset_methods_equal_the_free_functions(scene_and_fields) -> None:
    scene, _ = scene_and_fields
    xr.testing.assert_identical(scene.agri.index("NDVI"), compute(scene, ["NDVI"])["NDVI"])
    xr.testing.assert_identical(
        scene.agri.indices(["NDVI", "EVI"]), compute(scene, ["NDVI", "EVI"])
    )
    xr.testing.assert_identical(scene.agri.mask(), apply_mask(scene))
    xr.testing.assert_identical(scene.agri.valid_mask(), valid_mask(scene))
    fraction = scene.agri.valid_fraction()
    xr.testing.assert_identical(fraction, valid_fraction(scene))
    assert 0.0 < float(fraction) < 1.0  # the synthetic scene has clouds


def test_classify_zonal_zones_vectorize_equal_the_free_functions(
    scene_and_fields, ndvi_classes
) -> None:
    _, fields = scene_and_fields
    indices, classes = ndvi_classes
    xr.testing.assert_identical(
        indices.agri.classify(fields, min_pixels=5), classify(indices, fields, min_pixels=5)
    )
    table = indices.agri.zonal(fields, stats=["mean", "count"])
    pd.testing.assert_frame_equal(table, zonal_stats(indices, fields, stats=["mean", "count"]))
    means = table.filter(like="mean").stack().dropna()  # clouded fields have NaN means
    assert len(means) > 0 and means.between(-1, 1).all()
    pd.testing.assert_frame_equal(
        indices["NDVI"].agri.zonal(fields), zonal_stats(indices["NDVI"], fields)
    )
    got = indices["NDVI"].agri.zones(fields, n=3, min_pixels=5)
    assert not got.empty
    pd.testing.assert_frame_equal(got, zones(indices["NDVI"], fields, n=3, min_pixels=5))
    polys = classes.agri.vectorize(fields, min_area_ha=0.01)
    assert not polys.empty
    pd.testing.assert_frame_equal(polys, vectorize(classes, fields, min_area_ha=0.01))


def test_to_cog_writes_what_the_free_function_writes(tmp_path, ndvi_classes) -> None:
    indices, _ = ndvi_classes
    a = indices["NDVI"].agri.to_cog(tmp_path / "a.tif")
    b = to_cog(indices["NDVI"], tmp_path / "b.tif")
    assert a == tmp_path / "a.tif"
    ra, rb = _read(a), _read(b)
    np.testing.assert_array_equal(ra.values, rb.values)
    assert ra.rio.crs == rb.rio.crs and ra.rio.transform() == rb.rio.transform()
    ds = indices.agri.to_cog(tmp_path / "both.tif")
    assert _read(ds).sizes["band"] == 2


def test_segment_equals_the_free_function(scene_and_fields) -> None:
    pytest.importorskip("torch")
    from segment.conftest import tiny_segmenter

    from agrivision.segment import segment

    scene, _ = scene_and_fields
    model = tiny_segmenter(bands=("red", "nir"))
    xr.testing.assert_identical(
        scene.agri.segment(model, device="cpu").compute(),
        segment(scene, model, device="cpu").compute(),
    )

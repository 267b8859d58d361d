"""Reading labelled images: rasters, plain images, label rasters and vector labels."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import box

from agrivision.errors import BandNotFoundError, SourceError
from agrivision.segment.config import DataConfig, DataSource
from agrivision.segment.data import (
    Pair,
    fingerprint,
    load_samples,
    read_image,
    read_labels,
    resolve,
)
from agrivision.segment.model import ModelSpec

TRANSFORM = from_origin(500000, 5800000, 10, 10)


def _tif(path, data, *, dtype, descriptions=None, nodata=None):
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=dtype, crs="EPSG:32633", transform=TRANSFORM, nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data.astype(dtype))
        if descriptions:
            dst.descriptions = descriptions
    return path


def test_geotiff_bands_by_description_uint16_scaled_nodata_nan(tmp_path):
    dn = np.array([[[1000, 0], [2500, 4000]], [[3000, 5000], [0, 10000]]])
    path = _tif(tmp_path / "a.tif", dn, dtype="uint16", descriptions=("nir", "red"), nodata=0)
    image, grid = read_image(path, ("red", "nir"))
    expected = np.array([[[0.3, 0.5], [np.nan, 1.0]], [[0.1, np.nan], [0.25, 0.4]]], np.float32)
    np.testing.assert_allclose(image, expected, rtol=1e-6)
    assert grid["crs"].to_epsg() == 32633 and grid["shape"] == (2, 2)


def test_plain_png_with_channels_is_read_as_reflectance(tmp_path):
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 51, 255, 51
    Image.fromarray(rgb).save(tmp_path / "img.png")
    image, grid = read_image(tmp_path / "img.png", ("red", "nir"), channels={"red": 1, "nir": 2})
    np.testing.assert_allclose(image[0], 0.2, rtol=1e-6)
    np.testing.assert_allclose(image[1], 1.0, rtol=1e-6)
    assert grid["crs"] is None and grid["shape"] == (3, 4)


def test_unknown_bands_say_how_to_map_them(tmp_path):
    path = _tif(tmp_path / "a.tif", np.zeros((3, 2, 2)), dtype="uint8")
    with pytest.raises(BandNotFoundError, match=r"data\.channels"):
        read_image(path, ("red", "nir"))
    with pytest.raises(BandNotFoundError, match=r"1\.\.3"):
        read_image(path, ("red", "nir"), channels={"red": 1, "nir": 4})


def test_label_rasters_are_checked(tmp_path):
    image = _tif(tmp_path / "img.tif", np.zeros((1, 4, 4)), dtype="float32")
    grid = {"shape": (4, 4), "crs": None, "transform": TRANSFORM}
    source = DataSource(images="img.tif", labels="lab.tif")
    bad_code = _tif(tmp_path / "lab.tif", np.full((4, 4), 7), dtype="uint8")
    with pytest.raises(SourceError, match=r"codes \[7\]"):
        read_labels(Pair(image, bad_code, False), grid, source, ("a", "b"))
    small = _tif(tmp_path / "small.tif", np.zeros((3, 4)), dtype="uint8")
    with pytest.raises(SourceError, match="3x4"):
        read_labels(Pair(image, small, False), grid, source, ("a", "b"))


def test_vector_labels_are_rasterised_by_code_or_name(tmp_path):
    image = _tif(tmp_path / "img.tif", np.zeros((1, 6, 6)), dtype="float32")
    # pixel (row r, col c) covers x 500000+10c.., y 5800000-10r..; polygons in another CRS
    frame = gpd.GeoDataFrame(
        {"class": ["crop", 2]},
        geometry=[box(500000, 5799980, 500020, 5800000), box(500030, 5799940, 500060, 5799970)],
        crs="EPSG:32633",
    ).to_crs("EPSG:4326")
    frame["class"] = frame["class"].astype(object)
    frame.to_file(tmp_path / "labels.gpkg")
    source = DataSource(images="img.tif", vector="labels.gpkg")
    _, grid = read_image(image, ("b",))
    label = read_labels(resolve(source, tmp_path)[0], grid, source, ("soil", "crop", "weed"))
    expected = np.full((6, 6), 255, np.uint8)
    expected[0:2, 0:2] = 1
    expected[3:6, 3:6] = 2
    np.testing.assert_array_equal(label, expected)


def test_samples_at_model_resolution_and_fingerprint(tmp_path):
    img = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6) / 100
    lab = np.array([[0, 0, 1, 1, 2, 2]] * 4, np.uint8)
    lab[0, 0] = 255
    for i in (1, 2):
        _tif(tmp_path / f"im{i}.tif", img, dtype="float32", descriptions=("red", "nir"))
        _tif(tmp_path / f"lab{i}.tif", lab, dtype="uint8")
    source = DataSource(images="im{id}.tif", labels="lab{id}.tif", ids=[1, 2])
    data = DataConfig(root=str(tmp_path), train=source)
    spec = ModelSpec(
        bands=("red", "nir"), classes=("a", "b", "c"), downsample=2, encoder_depth=3, window=64
    )
    samples = load_samples(source, data, spec)
    assert [s.name for s in samples] == ["im1.tif", "im2.tif"]
    assert samples[0].image.shape == (2, 2, 3)
    np.testing.assert_allclose(samples[0].image[0, 0, 0], (0 + 1 + 6 + 7) / 400, rtol=1e-6)
    np.testing.assert_array_equal(samples[0].label, [[0, 1, 2], [0, 1, 2]])
    pairs = resolve(source, tmp_path)
    before = fingerprint(pairs, {"a": 1})
    assert before == fingerprint(pairs, {"a": 1}) != fingerprint(pairs, {"a": 2})
    _tif(tmp_path / "lab2.tif", np.zeros((4, 6)), dtype="uint8")
    assert fingerprint(pairs, {"a": 1}) != before


def test_missing_files_are_named(tmp_path):
    with pytest.raises(SourceError, match="no image matches"):
        resolve(DataSource(images="*.tif", labels="{stem}_l.tif"), tmp_path)
    (tmp_path / "a.tif").write_bytes(b"")
    with pytest.raises(SourceError, match=r"a_l\.tif"):
        resolve(DataSource(images="*.tif", labels="{stem}_l.tif"), tmp_path)

"""Quality measures on small rasters with closed-form answers."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin
from scipy import ndimage
from shapely.geometry import box

from agrivision.screening import ScreenConfig, screen
from agrivision.screening.quality import sharpness
from agrivision.screening.scenes import decimated_shape

T = from_origin(500000, 5800000, 10, 10)


def _tif(
    path: Path,
    data: np.ndarray,
    *,
    crs="EPSG:32633",
    nodata=None,
    descriptions=None,
    tags=None,
    overviews=None,
) -> Path:
    arr = data if data.ndim == 3 else data[None]
    profile = dict(
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=crs,
        transform=T if crs else None,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr)
            if descriptions:
                dst.descriptions = descriptions
            if tags:
                dst.update_tags(**tags)
            if overviews:
                dst.build_overviews(overviews, rasterio.enums.Resampling.nearest)
    return path


@pytest.fixture
def s2_scene(tmp_path) -> Path:
    """1024 x 1024 band files + SCL: 25 % cloud (cols < 256), 12.5 % shadow, 5 % nodata."""
    scl = np.full((1024, 1024), 4, np.uint8)
    scl[:, :256] = 9  # cloud high probability
    scl[:128, 256:] = 3  # shadow: 128 * 768 px
    scl[-64:, 256:576] = 0  # nodata: 64 * 320 px
    red = np.full((1024, 1024), 1200, np.uint16)
    red[-64:, 256:576] = 0
    red[500:510, 600:700] = 65535  # saturated: 1000 px
    _tif(tmp_path / "T33UVP_20240601_SCL_20m.tif", scl, overviews=[2, 4])
    _tif(tmp_path / "T33UVP_20240601_B04_10m.tif", red, nodata=0, overviews=[2, 4])
    return tmp_path


def test_decimated_shape_is_capped():
    assert decimated_shape((1024, 1024), 256 * 256) == (256, 256)
    assert decimated_shape((1000, 3000), 10_000) == (56, 167)  # factor ceil(sqrt(300)) = 18
    rows, cols = decimated_shape((10980, 10980), 1024 * 1024)
    assert rows * cols <= 1024 * 1024 and rows > 900


def test_band_files_form_one_scene_and_fractions_are_exact(s2_scene):
    config = ScreenConfig.model_validate({"read": {"max_pixels": 256 * 256}})
    table = screen(s2_scene, config=config).table
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.read_width, row.read_height) == (256, 256)  # decimated (overview 4)
    n, nodata = 1024 * 1024, 64 * 320
    assert row.nodata_fraction == pytest.approx(nodata / n)
    assert row.cloud_fraction == pytest.approx(256 * 1024 / (n - nodata))
    assert row.shadow_fraction == pytest.approx(128 * 768 / (n - nodata))
    assert row.valid_fraction == pytest.approx((n - nodata - 256 * 1024 - 128 * 768) / n)
    assert row.date.startswith("2024-06-01") and not row.drone


def test_full_resolution_read_counts_saturation(s2_scene):
    table = screen(s2_scene, config=ScreenConfig.model_validate({"read": {"max_pixels": 2**20}}))
    row = table.table.iloc[0]
    assert (row.read_width, row.read_height) == (1024, 1024)
    assert row.saturation_fraction == pytest.approx(1000 / (1024 * 1024 - 64 * 320))


def test_without_quality_band_cloud_fraction_is_unknown_not_zero(tmp_path):
    _tif(
        tmp_path / "plain_20240601.tif",
        np.full((3, 64, 64), 0.2, np.float32),
        descriptions=("red", "green", "blue"),
    )
    row = screen(tmp_path).table.iloc[0]
    assert np.isnan(row.cloud_fraction) and np.isnan(row.shadow_fraction)
    assert np.isnan(row.saturation_fraction)  # float data without a configured level
    assert row.valid_fraction == 1.0 and row.keep


def test_field_valid_fraction(s2_scene):
    fields = gpd.GeoDataFrame(
        {"field_id": ["cloudy", "clear"]},
        geometry=[
            box(500000, 5800000 - 5000, 500000 + 2000, 5800000 - 3000),  # cols < 200
            box(500000 + 4000, 5800000 - 5000, 500000 + 6000, 5800000 - 3000),
        ],
        crs="EPSG:32633",
    )
    only_cloudy = screen(s2_scene, fields=fields.iloc[:1]).table.iloc[0]
    assert only_cloudy.field_valid_fraction == 0.0
    assert "field_valid_fraction" in only_cloudy.reason
    only_clear = screen(s2_scene, fields=fields.iloc[1:].to_crs("EPSG:4326")).table.iloc[0]
    assert only_clear.field_valid_fraction == pytest.approx(1.0)


def test_sharpness_drops_with_blur():
    img = ndimage.gaussian_filter(np.random.default_rng(0).random((128, 128)), 1)
    img = (img - img.min()) / np.ptp(img)
    s = [sharpness(ndimage.gaussian_filter(img, sigma)) for sigma in (0, 1, 2, 4)]
    assert s == sorted(s, reverse=True) and s[3] < 0.1 * s[0]


def test_blurred_drone_frame_is_dropped(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(4):
        frame = ndimage.gaussian_filter(rng.random((200, 240)), 1.0)
        if i == 2:
            frame = ndimage.gaussian_filter(frame, 3.0)  # motion/focus blur
        dn = (4000 + frame * 40000).astype(np.uint16)
        _tif(
            tmp_path / f"IMG_{i:04d}_3.tif",
            dn,
            crs=None,
            tags={"TIFFTAG_DATETIME": f"2017:10:19 20:4{i}:00"},
        )
    table = screen(tmp_path).table.set_index("scene_id")
    assert table["drone"].all()
    assert list(table.index[~table["keep"]]) == ["IMG_0002_3"]
    assert "sharpness" in table.loc["IMG_0002_3", "reason"]
    assert (table["crs"] == "").all() and table["saturation_fraction"].eq(0).all()


def test_saturated_drone_frame_is_dropped(tmp_path):
    dn = np.full((100, 100), 20000, np.uint16)
    dn[:10] = 65520  # 12-bit ceiling scaled to 16 bit
    _tif(tmp_path / "IMG_0001_1.tif", dn, crs=None)
    row = screen(tmp_path).table.iloc[0]
    assert row.saturation_fraction == pytest.approx(0.1)
    assert "saturation_fraction" in row.reason and not row.keep

"""``screen`` measures clouds and shadows of products without a quality band (synthetic L1C)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from agrivision.masks import CloudMaskWarning
from agrivision.screening import ScreenConfig, screen
from agrivision.synthetic import write_synthetic


@pytest.fixture(scope="module")
def l1c(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp("l1c"), 2, shape=(512, 512), sensor="sentinel-2-l1c", chunks=256
    )


def test_l1c_clouds_and_shadows_from_the_detector(l1c):
    with rasterio.open(l1c.truth_clouds) as src:
        truth = src.read(1)
    row = screen(l1c.items).table.iloc[0]
    assert row["cloud_fraction"] == pytest.approx(np.isin(truth, (1, 2)).mean(), abs=0.03)
    assert row["shadow_fraction"] == pytest.approx((truth == 3).mean(), abs=0.05)
    off = screen(l1c.items, config=ScreenConfig(mask={"method": "off"})).table.iloc[0]
    assert np.isnan(off["cloud_fraction"]) and np.isnan(off["shadow_fraction"])


def test_band_files_are_named_by_the_sensor_profile(l1c):
    # One scene from 13 band files at 10/20/60 m, read decimated to 128 x 128 pixels.
    table = screen(l1c.outdir, config=ScreenConfig(read={"max_pixels": 128 * 128})).table
    assert len(table) == 1 and table.iloc[0]["read_width"] == 128
    assert 0.1 < table.iloc[0]["cloud_fraction"] < 0.3


def test_four_band_scene_uses_the_spectral_fallback(tmp_path):
    files = write_synthetic(
        tmp_path, 2, shape=(512, 512), sensor="sentinel-2-l1c", chunks=256,
        bands=["B02", "B03", "B04", "B08"],
    )  # fmt: skip
    with rasterio.open(files.truth_clouds) as src:
        truth = src.read(1)
    with pytest.warns(CloudMaskWarning, match="spectral test"):
        row = screen(files.items).table.iloc[0]
    assert row["cloud_fraction"] == pytest.approx(np.isin(truth, (1, 2)).mean(), abs=0.03)

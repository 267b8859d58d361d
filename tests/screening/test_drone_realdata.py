"""Screening raw MicaSense frames (../shared/data; skipped when absent)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from scipy import ndimage

from agrivision.screening import screen

REPO = Path(__file__).resolve().parents[2]
FRAMES = REPO.parent / "shared" / "data" / "uav_micasense_rededge" / "raw_capture"

pytestmark = pytest.mark.realdata


def test_a_blurred_frame_is_dropped_and_the_sharp_ones_kept(tmp_path):
    if not FRAMES.is_dir():
        pytest.skip("../shared/data/uav_micasense_rededge is not available")
    # The orchard capture's five frames (a survey); the panel capture is a ground shot
    # with little detail, not a frame of the same flight.
    for f in FRAMES.glob("IMG_0001_*.tif"):
        shutil.copy(f, tmp_path / f.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(FRAMES / "IMG_0001_3.tif") as src:
            profile, data = src.profile, src.read(1)
        with rasterio.open(tmp_path / "IMG_0002_3.tif", "w", **profile) as dst:
            dst.write(ndimage.gaussian_filter(data, 1.5), 1)  # out-of-focus copy
    table = screen(tmp_path).table.set_index("scene_id")
    assert len(table) == 6 and table["drone"].all() and (table["crs"] == "").all()
    assert table.loc["IMG_0002_3", "sharpness"] < 0.25 * table["sharpness"].median()
    assert "sharpness" in table.loc["IMG_0002_3", "reason"]
    assert table.drop(index="IMG_0002_3")["keep"].all()
    assert (table["read_width"] == 640).all()  # 1280 x 960 read at half resolution

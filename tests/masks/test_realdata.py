"""Automatic masks on real Sentinel-2 L1C (Slovenia, 5 dates) against the s2cloudless
reference mask shipped with the data (skipped when ../shared/data is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasters import SHARED_DATA

from agrivision import open_scene
from agrivision.cli import main
from agrivision.masks import CloudMaskWarning

pytestmark = pytest.mark.realdata
CLOUDY = ("2015-07-31", "2015-08-20")


@pytest.fixture(scope="module")
def slovenia():
    shared = SHARED_DATA / "s2_slovenia_eolearn"
    if not shared.is_dir():
        pytest.skip("../shared/data is not available")
    files = sorted(shared.glob("s2l1c_toa_13band_2015-*.tif"))
    with rasterio.open(shared / "cloud_mask_clm_68dates.tif") as src:
        reference = {d[:10]: src.read(i + 1) for i, d in enumerate(src.descriptions)}
    return files, reference


def test_slovenia_auto_mask_agrees_with_reference_on_every_date(slovenia):
    files, reference = slovenia
    scene = open_scene(files)  # no mask given
    assert scene.attrs["sensor"] == "sentinel-2-l1c" and scene.attrs["mask"] == "s2cloudless"
    codes = scene["auto_mask"].values
    for t, day in enumerate(np.datetime_as_string(scene.time.values, "D")):
        agreement = ((codes[t] == 1) == (reference[day] == 1)).mean()
        assert agreement >= 0.95, day  # measured 1.000 on all five dates
        valid = np.isfinite(scene["red"].values[t]).mean()
        assert (valid <= 0.1) if day in CLOUDY else (valid >= 0.9), day


def test_slovenia_screen_drops_the_cloudy_dates(slovenia, tmp_path, capsys):
    files, reference = slovenia
    out = tmp_path / "screen.csv"
    argv = ["screen", *map(str, files), "--sensor", "sentinel-2-l1c", "-o", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out)
    for _, row in table.iterrows():
        day = row["date"][:10]
        assert row["cloud_fraction"] == pytest.approx(reference[day].mean(), abs=0.1), day
        assert row["keep"] == (day not in CLOUDY), day


def test_austria_four_band_l2a_clear_dates_stay_clear(shared_data):
    # B02/B03/B04/B08 only: the spectral fallback; both dates are essentially cloud-free.
    files = sorted((shared_data / "s2_austria_ftw").glob("s2l2a_T33UUP_*_BGRN.tif"))
    with pytest.warns(CloudMaskWarning, match="spectral test"):
        scene = open_scene(files)
    assert scene.attrs["mask"] == "spectral"
    flagged = (scene["auto_mask"].values > 0).mean(axis=(1, 2))
    assert (flagged < 0.01).all()  # measured 0.2 % and 0 %

"""Acceptance on the Slovenia 68-date s2cloudless rasters (skipped when ../shared is absent).

Done means (issue #9): the cloud fraction per date from ``screen`` matches a numpy count on
the full-resolution data within 0.1 percentage points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from agrivision.screening import screen

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "s2_slovenia_eolearn"

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data/s2_slovenia_eolearn is not available")
    return DATA


@pytest.mark.parametrize(
    ("name", "cloudy"),
    [
        ("cloud_mask_clm_68dates.tif", lambda a: a == 1),
        ("cloud_probability_clp_68dates.tif", lambda a: a >= 0.4),  # default threshold
    ],
)
def test_cloud_fraction_per_date_matches_numpy(data, name, cloudy):
    table = screen(data / name).table
    with rasterio.open(data / name) as src:
        full = src.read()
        dates = list(src.descriptions)
    expected = cloudy(full).mean(axis=(1, 2))  # no nodata in these files
    assert len(table) == 68
    assert [d[:19] for d in table["date"]] == [d[:19] for d in dates]
    diff_pp = np.abs(table["cloud_fraction"].to_numpy() - expected).max() * 100
    assert diff_pp <= 0.1
    assert table["shadow_fraction"].isna().all()  # s2cloudless says nothing about shadows
    assert ((table["cloud_fraction"] < 0.05).sum()) == (expected < 0.05).sum()


def test_two_acquisitions_of_one_day_are_duplicates(data):
    table = screen(data / "ndvi_timeseries_68dates.tif").table
    flagged = table[table["duplicate_of"] != ""]
    # 2015-12-08 was delivered twice, 7 minutes apart (10:04:09 and 10:11:25).
    assert list(flagged["date"].str[:10]) == ["2015-12-08"]
    assert flagged.iloc[0]["duplicate_of"].endswith("20151208T100409")

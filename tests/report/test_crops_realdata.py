"""Peer groups on real imagery: Slovenia, 5 dates, the RABA land-use code as the group."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from agrivision.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_slovenia_peer_groups_by_raba_code(shared_data, tmp_path, capsys):
    folder = shared_data / "s2_slovenia_eolearn"
    sources = sorted(str(p) for p in folder.glob("s2l1c_toa_13band_*.tif"))
    out = tmp_path / "report"
    argv = ["report", *sources, "--fields", str(folder / "raba_landuse_polygons.geojson"),
            "--crop-column", "RABA_ID", "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("agrivision: warning: ") for line in err), err
    table = pd.read_csv(out / "fields.csv", dtype={"peer_group": str})
    codes = table["crop"].astype(str)
    # the groups by hand: codes with at least five judged fields (enough usable pixels,
    # enough valid data), the rest "all fields"
    observed = table["status"] != "insufficient data"
    counts = codes[observed].value_counts()
    own = codes.isin(counts.index[counts >= 5])
    assert set(counts.index[counts >= 5]) == {"1300", "2000"}  # six judged fields each
    assert (table.loc[own, "peer_group"] == codes[own]).all()
    assert (table.loc[~own, "peer_group"] == "all fields").all()
    assert np.isfinite(table.loc[observed, "peer_z"]).all() and observed.sum() == 15
    assert table.loc[~observed, "peer_z"].isna().all()
    for group, members in table[observed].groupby("peer_group"):
        peers = table[observed] if group == "all fields" else members
        median = peers["ndvi_mean"].median()
        mad = (peers["ndvi_mean"] - median).abs().median()
        z = (members["ndvi_mean"] - median) / max(1.4826 * mad, 0.02)
        np.testing.assert_allclose(members["peer_z"], z, rtol=1e-9, err_msg=group)
        assert (members["peer_n"] == len(peers)).all()
    summary = json.loads((out / "summary.json").read_text())
    assert any("fewer than 5 fields" in w and "1600 (1)" in w for w in summary["warnings"])
    # the automatic cloud mask removes the two hazy dates (s2cloudless: all cloud) ...
    series = pd.read_csv(out / "fields_timeseries.csv")
    hazy = series[series["date"].isin(["2015-07-31", "2015-08-20"])]
    assert (hazy["valid_fraction"] == 0).all() and hazy["ndvi_mean"].isna().all()
    # ... so the change is taken between the two clear late dates, for every field
    assert (table["previous_date"] == "2015-08-30").all()


def test_slovenia_haze_without_a_mask_is_cloud_suspect(shared_data, tmp_path, capsys):
    folder = shared_data / "s2_slovenia_eolearn"
    sources = sorted(str(p) for p in folder.glob("s2l1c_toa_13band_*.tif"))
    out = tmp_path / "report"
    argv = ["report", *sources, "--fields", str(folder / "raba_landuse_polygons.geojson"),
            "--no-mask", "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    # the hazy dates (field NDVI ~0.40 and ~0.17 between ~0.65 before and after) are flagged
    series = pd.read_csv(out / "fields_timeseries.csv")
    hazy = series[series["date"] == "2015-08-20"]
    assert hazy["cloud_suspect"].mean() > 0.9
    clear = series[series["date"].isin(["2015-07-11", "2015-09-09"])]
    assert not clear["cloud_suspect"].any()  # first and last dates are never flagged
    # so the change is taken between the two clear late dates, for every field
    table = pd.read_csv(out / "fields.csv")
    assert (table["previous_date"] == "2015-08-30").all()

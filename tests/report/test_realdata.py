"""``agrivision report`` on real Sentinel-2 data: every output, and values equal to ``stats``.

Skipped when ../shared/data is absent; the synthetic report tests cover the same code.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from agrivision.cli import main
from agrivision.report.run import OUTPUTS
from agrivision.synthetic import make_fields

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _report_and_stats(sources, fields, tmp_path):
    out = tmp_path / "report"
    assert main(["report", *sources, "--fields", str(fields), "-o", str(out), "--quiet"]) == 0
    stats_csv = tmp_path / "stats.csv"
    assert main(["stats", *sources, "--fields", str(fields), "-o", str(stats_csv)]) == 0
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    table = gpd.read_file(out / "fields.geojson")
    stats = pd.read_csv(stats_csv, dtype={"field_id": str})
    last = stats[stats["time"] == stats["time"].max()].set_index("field_id")
    table["field_id"] = table["field_id"].astype(str)
    table = table.set_index("field_id")
    return out, table, last


def test_slovenia_five_dates_with_the_88_land_use_polygons(shared_data, tmp_path):
    folder = shared_data / "s2_slovenia_eolearn"
    sources = sorted(str(p) for p in folder.glob("s2l1c_toa_13band_*.tif"))
    assert len(sources) == 5
    out, table, last = _report_and_stats(
        sources, folder / "raba_landuse_polygons.geojson", tmp_path
    )
    assert len(table) == 88 == last.index.nunique()
    inside = last.index[last["coverage"] > 0]
    np.testing.assert_allclose(
        table.loc[inside, "area_ha"], last.loc[inside, "area_ha"], rtol=1e-12
    )
    np.testing.assert_allclose(
        table.loc[inside, "ndvi_mean"], last.loc[inside, "NDVI_mean"], rtol=0, atol=1e-9
    )
    series = pd.read_csv(out / "fields_timeseries.csv")
    assert series["date"].nunique() == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sensor"] == "sentinel-2-l1c"
    with rasterio.open(out / "indices.tif") as src:
        assert src.crs.to_epsg() == 32633 and src.count == 2


def test_austria_two_dates_with_generated_fields(shared_data, tmp_path):
    folder = shared_data / "s2_austria_ftw"
    sources = sorted(str(p) for p in folder.glob("s2l2a_T33UUP_*_BGRN.tif"))
    with rasterio.open(sources[0]) as src:
        bounds = tuple(src.bounds)
    fields = make_fields(1, bounds=bounds, crs="EPSG:32633", mean_field_ha=3.0)
    fields.to_file(tmp_path / "fields.gpkg")
    out, table, last = _report_and_stats(sources, tmp_path / "fields.gpkg", tmp_path)
    assert len(table) == len(fields) == len(last)
    np.testing.assert_allclose(
        table["area_ha"].sort_index(), last["area_ha"].sort_index(), rtol=1e-12
    )
    np.testing.assert_allclose(
        table["ndvi_mean"].sort_index(), last["NDVI_mean"].sort_index(), rtol=0, atol=1e-9
    )
    # September farmland: most fields are vegetated, some harvested
    assert 0.3 < table["ndvi_mean"].median() < 0.9
    assert pd.to_datetime(table["date"]).dt.strftime("%Y-%m-%d").unique().tolist() == ["2021-09-25"]
    # no red-edge band: the default indices fall back to NDVI alone, and say so
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sensor"] == "sentinel-2-l2a" and summary["bands"] == [
        "blue",
        "green",
        "red",
        "nir",
        "auto_mask",  # no SCL and no s2cloudless bands: the spectral cloud test's codes
    ]
    assert summary["mask"] == "spectral"
    assert summary["dates"] == ["2021-06-17", "2021-09-25"]
    assert any("NDRE is left out" in w for w in summary["warnings"])
    assert "NDRE is left out" in (out / "report.html").read_text()


def test_slovenia_slivers_get_no_verdict(shared_data, tmp_path):
    """2015-09-09 over the 88 RABA parcels: 46 have under 0.1 ha (10 pixels) observed."""
    folder = shared_data / "s2_slovenia_eolearn"
    out = tmp_path / "report"
    args = [str(folder / "s2l1c_toa_13band_2015-09-09.tif"), "--fields",
            str(folder / "raba_landuse_polygons.geojson"), "-o", str(out), "--quiet"]  # fmt: skip
    assert main(["report", *args]) == 0
    table = gpd.read_file(out / "fields.geojson")
    observed_ha = table["area_ha"] * table["coverage"] * table["valid_fraction"]
    small = table[observed_ha < 0.1]
    assert len(small) >= 40
    assert (small["status"] == "insufficient data").all() and not small["hotspot"].any()
    assert small["status_reason"].str.fullmatch(r"\d+ usable pixels < 30").all()
    judged = table[table["status"] != "insufficient data"]
    assert len(judged) == 15 and (judged["status_reason"] != "").any()  # parcels with an interior
    # no problem polygon and no zone belongs to a field without a verdict
    for layer in ("problems", "zones"):
        polygons = gpd.read_file(out / f"{layer}.geojson")
        assert len(polygons) and polygons["field_id"].isin(judged["field_id"]).all()
    # the cards lead with judged fields: the first card is a problem, no sliver
    page = (out / "report.html").read_text()
    first = page.index('<div class="card"')
    assert '<span class="status problem">problem</span>' in page[first : first + 300]

"""``agrivision report``: every output, values that match ``stats``, flags, and errors."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from rasters import geodesic_ha

from agrivision.cli import main
from agrivision.report.config import ReportConfig
from agrivision.report.run import OUTPUTS, _caught, run_report


@pytest.fixture(scope="module")
def report_dir(report_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    code = main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return out


def test_every_output_is_written(report_dir):
    for name in (*OUTPUTS, "fields_timeseries.csv"):
        assert (report_dir / name).stat().st_size > 0, name
    assert not list(report_dir.parent.glob(".report.partial-*"))
    layers = {name for name, _ in pyogrio.list_layers(report_dir / "report.gpkg")}
    # layer_styles: the QGIS styles of the three layers (tests/report/test_styles.py)
    assert layers == {"fields", "problems", "zones", "layer_styles"}
    with rasterio.open(report_dir / "classes.tif") as src:
        assert src.colormap(1)[1][:3] == (26, 150, 65)
        assert json.loads(src.tags()["CLASS_NAMES"])["3"] == "anomaly"
    with rasterio.open(report_dir / "indices.tif") as src:
        assert src.descriptions == ("NDVI", "NDRE")


def test_field_values(report_dir):
    table = gpd.read_file(report_dir / "fields.geojson").set_index("field_id")
    assert table.crs.to_epsg() == 4326
    a, b, c = table.loc["A"], table.loc["B"], table.loc["C"]
    # 10.24 ha planar in EPSG:32633, 100 km east of the central meridian: geodesic is larger
    pixel_ha = geodesic_ha(0.01, "EPSG:32633", 600_240, 5_299_760)
    assert a["area_ha"] == pytest.approx(32 * 32 * pixel_ha, rel=1e-6)
    # Field A, last date: 0.8 everywhere but a 6x6 patch at 0.3 -> exact coverage-weighted mean.
    assert a["ndvi_mean"] == pytest.approx((0.8 * (1024 - 36) + 0.3 * 36) / 1024, abs=2e-4)
    assert a["anomaly_pct"] == pytest.approx(100 * 36 / 1024, abs=0.01)
    assert a["hotspot"] and a["status"] == "problem"
    assert a["problem_area_ha"] == pytest.approx(36 * pixel_ha, rel=1e-5)
    assert b["ndvi_mean"] == pytest.approx(0.55, abs=2e-4)
    assert b["ndvi_change"] == pytest.approx(-0.20, abs=5e-4) and b["declining"]
    assert c["outside_scene"] and c["status"] == "insufficient data" and c["coverage"] == 0
    assert c["status_reason"] == "outside the scene" and a["status_reason"].startswith(
        "anomaly patch 0.36 ha"
    )
    assert bool(a["declining"]) is False


def test_fields_match_stats_command(report_dir, report_inputs, tmp_path):
    out = tmp_path / "stats.csv"
    code = main(["stats", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-i", "NDVI", "-o", str(out)])  # fmt: skip
    assert code == 0
    stats = pd.read_csv(out)
    last = stats[stats["time"] == stats["time"].max()].set_index("field_id")
    table = pd.read_csv(report_dir / "fields.csv").set_index("field_id")
    for fid in ("A", "B"):
        assert table.loc[fid, "ndvi_mean"] == last.loc[fid, "NDVI_mean"]
        assert table.loc[fid, "area_ha"] == pytest.approx(last.loc[fid, "area_ha"], rel=1e-12)


def test_problems_and_zones(report_dir):
    problems = gpd.read_file(report_dir / "problems.geojson")
    pest = problems[(problems["field_id"] == "A") & (problems["class"] == 3)]
    assert len(pest) == 1
    assert pest["area_ha"].iloc[0] == pytest.approx(
        geodesic_ha(0.36, "EPSG:32633", 600_230, 5_299_770), rel=1e-6
    )
    zones = gpd.read_file(report_dir / "zones.geojson")
    assert set(zones["field_id"]) == {"A", "B"}


def test_result_counts_polygons_and_reads_them_back(report_inputs, tmp_path):
    result = run_report(report_inputs["sources"], report_inputs["fields"], tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    problems, zones = result.problems, result.zones  # read from report.gpkg
    assert result.problem_polygons == summary["problem_polygons"] == len(problems) > 0
    assert result.zone_polygons == summary["zones"] == len(zones) > 0
    geojson = gpd.read_file(tmp_path / "r" / "problems.geojson")
    assert list(problems["field_id"]) == list(geojson["field_id"])
    assert problems.crs.to_epsg() == 32633
    assert not [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".")]  # no spool


def test_summary_provenance(report_dir, report_inputs):
    summary = json.loads((report_dir / "summary.json").read_text())
    assert len(summary["inputs"]) == len(report_inputs["sources"]) + 1
    assert all(len(i["sha256"]) == 64 for i in summary["inputs"])
    assert {"open", "indices", "zonal", "html"} <= set(summary["timings_s"])
    assert summary["fields"] == 3


def test_fields_in_another_crs_give_the_same_table(report_dir, report_inputs, tmp_path):
    out = tmp_path / "r4326"
    assert main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields_4326"]),
                 "-o", str(out), "--quiet"]) == 0  # fmt: skip
    a = pd.read_csv(report_dir / "fields.csv").set_index("field_id")
    b = pd.read_csv(out / "fields.csv").set_index("field_id")
    # Reprojection there and back moves vertices by micrometres: means agree closely.
    np.testing.assert_allclose(a["ndvi_mean"], b["ndvi_mean"], atol=1e-4)
    np.testing.assert_allclose(a["area_ha"], b["area_ha"], rtol=1e-3)


def test_existing_outputs_need_overwrite(report_dir, report_inputs, capsys):
    before = (report_dir / "fields.geojson").read_bytes()
    code = main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(report_dir), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (report_dir / "fields.geojson").read_bytes() == before


def test_missing_band_and_unwritable_dir(report_inputs, tmp_path, capsys):
    code = main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-i", "NBR", "-o", str(tmp_path / "x"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "NBR" in err and "swir22" in err
    assert not (tmp_path / "x").exists()
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    code = main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(not_a_dir / "out"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "not a folder" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                     "-o", str(locked / "out"), "--quiet"])  # fmt: skip
        err = capsys.readouterr().err
        if code == 0:  # running as root: permissions do not bind
            pytest.skip("directory permissions are not enforced for this user")
        assert code == 2 and "not writable" in err
    finally:
        locked.chmod(0o700)


def test_print_config(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("zones:\n  n: 5\n")
    assert main(["report", "--config", str(cfg), "--zones", "4", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["zones"]["n"] == 4


def test_without_any_supported_field_the_report_says_so(report_inputs, tmp_path):
    config = tmp_path / "strict.yaml"
    config.write_text("problems:\n  min_pixels: 100000\n")
    out = tmp_path / "report"
    args = ["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
            "--config", str(config), "-o", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    table = gpd.read_file(out / "fields.geojson")
    assert (table["status"] == "insufficient data").all() and not table["hotspot"].any()
    assert table["status_reason"].str.endswith("usable pixels < 100000").sum() == 2
    assert gpd.read_file(out / "problems.geojson").empty
    assert gpd.read_file(out / "zones.geojson").empty
    summary = json.loads((out / "summary.json").read_text())
    assert any(w.startswith("no field has enough data for a verdict") for w in summary["warnings"])


def test_zone_quality_columns_in_the_field_table(report_dir):
    table = pd.read_csv(report_dir / "fields.csv").set_index("field_id")
    zones = gpd.read_file(report_dir / "zones.geojson")
    counts = zones.groupby("field_id").size()
    for fid in ("A", "B"):
        assert table.loc[fid, "zones_polygons"] == counts[fid]
        assert table.loc[fid, "zones_n"] == zones[zones.field_id == fid].zone.nunique()
        assert 0 <= table.loc[fid, "zones_variance_reduction"] <= 1
    assert table.loc["C", "zones_n"] == 0 and np.isnan(table.loc["C", "zones_variance_reduction"])


def test_season_zones_in_the_report(report_inputs, tmp_path):
    config = ReportConfig(zones={"season": True, "n": "auto"})
    run_report(report_inputs["sources"], report_inputs["fields"], tmp_path / "s", config=config)
    zones = gpd.read_file(tmp_path / "s" / "zones.geojson")
    assert "relative_NDVI" in zones.columns and set(zones.field_id) == {"A", "B"}
    # field B is uniform on both dates: one zone at the field's median
    b = zones[zones.field_id == "B"]
    assert b.zone.nunique() == 1 and b.relative_NDVI.iloc[0] == pytest.approx(1.0, abs=1e-3)


def test_warnings_name_the_published_files_not_the_staging_folder(tmp_path):
    """Outputs are written in a staging folder and moved at the end: a warning about one of
    them names where the user finds it. Deprecations are no concern of the report's reader."""
    staging, out = tmp_path / ".report.partial-x1", tmp_path / "report"
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        for _ in range(2):
            message = f"{staging / 'problems.geojson'}: writing an empty table"
            warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    assert _caught(recorded, staging, out) == [
        f"{out / 'problems.geojson'}: writing an empty table"
    ]

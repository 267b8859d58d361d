"""compare_reports: two runs of the same report agree; a changed cell, polygon or pixel is named."""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from agrivision.cli import main
from agrivision.report.compare import compare_reports
from agrivision.report.compare import main as compare_main


@pytest.fixture(scope="module")
def two_runs(report_inputs, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    for name in ("a", "b"):
        argv = ["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                "-o", str(root / name), "--quiet"]  # fmt: skip
        assert main(argv) == 0
    return root / "a", root / "b"


def test_two_runs_of_one_report_are_identical(two_runs, capsys):
    assert compare_reports(*two_runs) == []
    assert compare_main([str(p) for p in two_runs]) == 0
    assert capsys.readouterr().out.strip() == "identical"


def test_a_changed_cell_polygon_and_pixel_are_each_named(two_runs, tmp_path):
    a, b = two_runs
    changed = tmp_path / "changed"
    shutil.copytree(b, changed)
    table = pd.read_csv(changed / "fields.csv")
    table.loc[1, "ndvi_mean"] += 1e-6
    table.to_csv(changed / "fields.csv", index=False)
    zones = gpd.read_file(changed / "zones.geojson")
    zones.loc[0, "geometry"] = zones.geometry.iloc[0].buffer(1e-5)
    zones.to_file(changed / "zones.geojson")
    with rasterio.open(changed / "classes.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
        band = ds.read(1)
        band[0, 0] = 7
        ds.write(band, 1)
    problems = compare_reports(a, changed)
    assert any(p.startswith("fields.csv: column 'ndvi_mean' differs in 1 rows") for p in problems)
    assert "zones.geojson: 1 geometries differ (first: row 0)" in problems
    assert any(p.startswith("classes.tif: 1 pixels differ") for p in problems)
    assert len(problems) == 3
    assert np.isclose(
        table.loc[1, "ndvi_mean"] - 1e-6, pd.read_csv(a / "fields.csv").loc[1, "ndvi_mean"]
    )

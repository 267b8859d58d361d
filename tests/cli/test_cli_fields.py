"""Commands that take --fields: one shared no-overlap check, the crop column, and warnings
printed as one ``agrivision: warning:`` line each, once per run."""

from __future__ import annotations

import subprocess
import sys
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from rasters import write_tif

from agrivision.cli import main
from agrivision.cli.warn import one_line_warnings

X0, Y0 = 500_000, 5_800_000  # the test scene's corner, EPSG:32633 (lon 15.0, lat 52.3)


@pytest.fixture
def s2_file(tmp_path):
    data = np.random.default_rng(0).integers(1000, 5000, size=(4, 32, 32), dtype=np.uint16)
    return write_tif(tmp_path / "s2.tif", data, nodata=0, descriptions=["B02", "B03", "B04", "B08"],
                     tags={"SENSOR": "sentinel-2-l2a", "DATETIME": "2024-06-12"})  # fmt: skip


def fields_file(path, boxes, crs=32633, **columns):
    gdf = gpd.GeoDataFrame(columns, geometry=[shapely.box(*b) for b in boxes], crs=crs)
    gdf.to_file(path)
    return str(path)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


COMMANDS = {
    "stats": ["stats", "{scene}", "--fields", "{fields}", "-o", "{tmp}/s.csv"],
    "classify": ["classify", "{scene}", "--fields", "{fields}", "-o", "{tmp}/c.tif"],
    "zones": ["zones", "{scene}", "--fields", "{fields}", "-o", "{tmp}/z.geojson"],
    "vectorize": ["vectorize", "{tmp}/c0.tif", "--fields", "{fields}", "-o", "{tmp}/v.geojson"],
    "report": ["report", "{scene}", "--fields", "{fields}", "-o", "{tmp}/rep", "--quiet"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_fields_that_miss_the_scene(tmp_path, s2_file, capsys, command):
    # A field near Leipzig (its UTM bounding box) over a scene at lon 15.0, lat 52.3.
    leipzig = gpd.GeoSeries([shapely.box(12.1, 51.0, 12.3, 51.1)], crs=4326).to_crs(32633)
    fields = fields_file(tmp_path / "f.gpkg", [leipzig.total_bounds], field_id=[1])
    write_tif(tmp_path / "c0.tif", np.ones((32, 32), np.uint8))
    argv = [a.format(scene=s2_file, fields=fields, tmp=tmp_path) for a in COMMANDS[command]]
    code, _, err = run(argv, capsys)
    assert code == 2
    # warnings (e.g. which cloud test ran on these random pixels) may come first
    lines = [line for line in err.splitlines() if not line.startswith("agrivision: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("agrivision: error: "), err
    assert "f.gpkg: no field overlaps the scene" in lines[0]
    assert "the fields lie at lon 12.094..12.306, lat 50.995..51.105" in lines[0]
    assert "the scene covers lon 15.000..15.005, lat 52.347..52.350" in lines[0]
    assert "check the fields' CRS" in lines[0]
    assert not (tmp_path / "rep").exists()


def test_stats_copies_the_crop_and_refuses_an_unknown_crop_column(tmp_path, s2_file, capsys):
    boxes = [(X0 + 10, Y0 - 300, X0 + 150, Y0 - 10), (X0 + 160, Y0 - 300, X0 + 310, Y0 - 10)]
    fields = fields_file(tmp_path / "f.gpkg", boxes, field_id=[1, 2], gewas=["Mais", "Tarwe"])
    code, _, _ = run(["stats", s2_file, "--fields", fields, "-o", tmp_path / "s.csv"], capsys)
    assert code == 0
    assert pd.read_csv(tmp_path / "s.csv")["crop"].tolist() == ["Mais", "Tarwe"]
    code, _, err = run(["stats", s2_file, "--fields", fields, "--crop-column", "teelt",
                        "-o", tmp_path / "t.csv"], capsys)  # fmt: skip
    errors = [line for line in err.splitlines() if not line.startswith("agrivision: warning: ")]
    assert code == 2 and len(errors) == 1
    assert "no crop column 'teelt' (columns: gewas)" in err


def test_report_refuses_an_unknown_crop_column_before_computing(tmp_path, s2_file, capsys):
    fields = fields_file(tmp_path / "f.gpkg", [(X0 + 10, Y0 - 300, X0 + 150, Y0 - 10)],
                         field_id=[1], gewas=["Mais"])  # fmt: skip
    code, _, err = run(["report", s2_file, "--fields", fields, "--crop-column", "crop",
                        "-o", tmp_path / "rep", "--quiet"], capsys)  # fmt: skip
    assert code == 2
    assert err.splitlines()[-1].startswith("agrivision: error: ") and "(columns: gewas)" in err


def test_warnings_print_one_line_once_without_source(tmp_path, s2_file):
    # No field_id column: read_fields warns (FieldsWarning) that it generated ids.
    boxes = [(X0 + 10, Y0 - 300, X0 + 150, Y0 - 10)]
    fields = fields_file(tmp_path / "f.gpkg", boxes, name=["north"])
    proc = subprocess.run(
        [sys.executable, "-m", "agrivision", "stats", str(s2_file), "--fields", fields,
         "--no-mask", "-o", str(tmp_path / "s.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"agrivision: warning: {fields}: no 'field_id' column; generated field_id 1..1"
    ]


def test_the_same_warning_is_printed_once_per_run(capsys):
    for _ in range(2):  # two runs: each prints it once
        with one_line_warnings():
            for _ in range(3):
                warnings.warn("field 7: low valid data\n  (clouds)", UserWarning, stacklevel=1)
            warnings.warn("a deprecation", DeprecationWarning, stacklevel=1)
        assert capsys.readouterr().err == "agrivision: warning: field 7: low valid data (clouds)\n"

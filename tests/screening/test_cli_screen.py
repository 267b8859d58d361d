"""``agrivision screen`` through click's test runner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from agrivision.cli.screen import screen


def _collection(folder):
    profile = dict(
        driver="GTiff",
        width=40,
        height=40,
        count=2,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500000, 5800000, 10, 10),
    )
    for i, cloudy_rows in enumerate((0, 30, 4)):
        scl = np.full((40, 40), 4, np.uint8)
        scl[:cloudy_rows] = 9
        grey = np.random.default_rng(i).integers(1, 200, (40, 40), dtype=np.uint8)
        with rasterio.open(folder / f"s{i}_2024060{i + 1}.tif", "w", **profile) as dst:
            dst.write(np.stack([grey, scl]))
            dst.descriptions = ("red", "SCL")
    return folder


def test_screen_writes_csv_and_stac_selection(tmp_path):
    folder = _collection(tmp_path)
    out, sel = tmp_path / "screen.csv", tmp_path / "kept.json"
    result = CliRunner().invoke(screen, [str(folder), "-o", str(out), "--select", str(sel)])
    assert result.exit_code == 0, result.output
    assert "3 scenes, 2 kept, 0 duplicates" in result.output
    table = pd.read_csv(out)
    assert list(table["cloud_fraction"]) == [0.0, 0.75, 0.1]
    assert list(table["keep"]) == [True, False, True]
    assert [f["id"] for f in json.loads(sel.read_text())["features"]] == [
        "s0_20240601",
        "s2_20240603",
    ]


def test_screen_config_and_max_pixels(tmp_path):
    (tmp_path / "c").mkdir()
    folder = _collection(tmp_path / "c")
    cfg = tmp_path / "strict.yaml"
    cfg.write_text("keep:\n  max_cloud_fraction: 0.05\n")
    out = tmp_path / "screen.csv"
    args = [str(folder), "-o", str(out), "--config", str(cfg), "--max-pixels", "4096"]
    result = CliRunner().invoke(screen, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table["keep"]) == [True, False, False]
    bad = CliRunner().invoke(screen, [str(folder), "-o", str(out), "--max-pixels", "5"])
    assert bad.exit_code != 0 and "max_pixels" in str(bad.exception)

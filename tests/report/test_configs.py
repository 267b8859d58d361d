"""The report configs shipped in ``config/`` load, are consistent, and take effect."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest

from agrivision.cli import main
from agrivision.errors import ConfigError
from agrivision.health import HealthRules
from agrivision.indices import index_info
from agrivision.report.config import load_report_config

CONFIG = Path(__file__).resolve().parents[2] / "config"
REPORT_CONFIGS = ["sentinel2-field-report", "landsat-timeseries", "drone-micasense"]


@pytest.mark.parametrize("name", REPORT_CONFIGS)
def test_shipped_report_config_is_consistent(name):
    config = load_report_config(CONFIG / f"{name}.yaml")
    for index in config.indices:
        index_info(index)  # a catalogue name or alias
    assert config.zones.index in config.indices
    assert config.timeseries.index in config.indices
    rules = HealthRules(**config.health)
    assert rules.anomaly_z < rules.stressed_z
    assert (rules.stressed_ndre is None) == ("NDRE" not in config.indices)


def test_landsat_config_does_not_ask_for_red_edge():
    config = load_report_config(CONFIG / "landsat-timeseries.yaml")
    assert config.scene.resolution == 30 and "NDRE" not in config.indices


def test_bad_health_key_in_a_config_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("health:\n  stressed_ndvi: 0.5\n  pest_zz: -3\n")
    with pytest.raises(ConfigError) as err:
        load_report_config(bad)
    msg = str(err.value)
    assert "bad.yaml" in msg and "health.pest_zz" in msg and "allowed: bare_ndvi" in msg


def test_map_tiles_must_be_an_xyz_template(tmp_path):
    good = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    config = load_report_config(None, {"output.map_tiles": good})
    assert config.output.map_tiles == good
    bad = tmp_path / "bad.yaml"
    bad.write_text("output:\n  map_tiles: https://tile.openstreetmap.org/tiles.png\n")
    with pytest.raises(ConfigError) as err:
        load_report_config(bad)
    assert "bad.yaml" in str(err.value) and "output.map_tiles" in str(err.value)


def test_sentinel2_config_takes_effect_and_flags_override_it(report_inputs, tmp_path):
    out = tmp_path / "rep"
    args = ["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
            "--config", str(CONFIG / "sentinel2-field-report.yaml"), "-o", str(out), "--quiet",
            "--zones", "4"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["problems"]["min_area_ha"] == 0.05
    assert summary["config"]["zones"]["n"] == 4  # the flag wins over the file's 3
    problems = gpd.read_file(out / "problems.geojson").to_crs(32633)
    # the 6x6 pest patch of field A is 0.36 ha: above the config's 0.05 ha floor, so it stays
    assert (problems.area / 1e4 >= 0.05 - 1e-9).all() and len(problems) >= 1

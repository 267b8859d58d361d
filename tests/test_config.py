"""Run configs: safe YAML, unknown keys and wrong types named, overrides applied."""

from __future__ import annotations

import pytest

from agrivision.config import load_yaml
from agrivision.errors import ConfigError
from agrivision.fields.config import FieldTableConfig
from agrivision.report.config import ReportConfig, load_report_config


def write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_overrides(tmp_path):
    cfg = load_report_config(
        write(tmp_path, "zones:\n  n: 4\nindices: [NDVI, EVI]\n"),
        {"zones.method": "kmeans", "zones.n": None},
    )
    assert cfg.zones.n == 4 and cfg.zones.method == "kmeans"
    assert cfg.indices == ["NDVI", "EVI"]
    assert load_report_config().scene.chunks == 1024


def test_the_report_reads_the_field_tables_sections_from_its_file(tmp_path):
    cfg = load_report_config(write(tmp_path, "problems:\n  min_pixels: 12\n"))
    table = FieldTableConfig()
    for name in ("fields", "problems", "timeseries"):  # the same section classes
        assert type(getattr(cfg, name)) is type(getattr(table, name))
    assert cfg.problems.min_pixels == 12 and table.problems.min_pixels == 30
    assert list(ReportConfig.model_fields)[:3] == ["indices", "scene", "fields"]  # dump order


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "zones:\n  bogus: 1\n",
            r"unknown key 'zones.bogus'.*allowed: n, method, index, smooth, min_area_ha",
        ),
        ("colour: red\n", r"unknown key 'colour'.*allowed: indices"),
        ("zones:\n  n: many\n", r"zones.n: Value error, must be a number of zones in 2..10"),
        ("zones:\n  method: median\n", r"zones.method"),
        ("scene:\n  chunks: 3\n", r"scene.chunks"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("indices: !!python/object/apply:os.system ['echo pwned']\n", "no Python tags"),
        ("a: [unclosed\n", "invalid YAML"),
        ("?\n", r"None: Keys should be strings"),  # a YAML key that is null
        ("zones:\n  1: 3\n", r"zones.1: Keys should be strings"),
    ],
)
def test_invalid_configs_name_the_key(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_report_config(write(tmp_path, text))


def test_alias_bomb_is_refused(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    with pytest.raises(ConfigError, match="aliases"):
        load_yaml(write(tmp_path, "\n".join(lines) + "\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "nope.yaml")

"""Sensor profiles: built-ins, user YAML, scale/offset rules."""

from __future__ import annotations

import datetime as dt

import pytest

from agrivision.errors import SensorError
from agrivision.sensors import list_profiles, load_profile

REQUIRED = {
    "sentinel-2-l2a", "sentinel-2-l1c", "landsat-7-c2-l2", "landsat-8-c2-l2", "landsat-9-c2-l2",
    "planetscope-4band", "planetscope-8band", "micasense-rededge", "dji-p4-multispectral",
    "generic-rgbn",
}  # fmt: skip


def test_builtin_profiles_present_and_valid():
    assert REQUIRED <= set(list_profiles())
    for name in REQUIRED:
        prof = load_profile(name)
        assert {"red", "nir"} <= {b.common_name for b in prof.bands.values()} or name.startswith(
            "landsat"
        )


def test_scale_offsets():
    l8 = load_profile("landsat-8-c2-l2")
    assert (l8.scale, l8.offset) == (0.0000275, -0.2)
    assert l8.common_name("SR_B5") == "nir08"
    s2 = load_profile("S2L2A")  # alias
    assert s2.offset_for("04.00", None) == -0.1
    assert s2.offset_for("03.01", dt.date(2023, 1, 1)) == 0.0  # the baseline wins over the date
    assert s2.offset_for(None, dt.date(2022, 1, 25)) == -0.1
    assert s2.offset_for(None, dt.date(2021, 12, 31)) == 0.0
    assert load_profile("micasense-rededge").scale == 1 / 32768


def test_user_profile_from_yaml(tmp_path, monkeypatch):
    yaml_text = """
name: my-camera
scale: 0.001
band_order: [c1, c2]
bands:
  c1: {common_name: red}
  c2: {common_name: nir}
"""
    (tmp_path / "my-camera.yaml").write_text(yaml_text)
    assert load_profile(tmp_path / "my-camera.yaml").scale == 0.001
    monkeypatch.setenv("AGRIVISION_SENSOR_PATH", str(tmp_path))
    assert "my-camera" in list_profiles()
    assert load_profile("my-camera").common_name("c2") == "nir"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\nband_order: [a]\nbands: {}\n", "band_order"),
        ("name: x\nband_order: [a]\nbands: {a: {common_name: red}}\nscal: 1\n", "scal"),
        ("- just a list\n", "mapping"),
        ("name: [unclosed\n", "cannot read"),
    ],
)
def test_invalid_profiles(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SensorError, match=match):
        load_profile(path)

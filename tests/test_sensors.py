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


# --------------------------------------------------------------------------- detection


def _tiny_tif(path, **tags):
    """A 4x4 uint16 GeoTIFF (UTM 33N, 10 m) with the given dataset tags."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    profile = dict(driver="GTiff", width=4, height=4, count=1, dtype="uint16", crs="EPSG:32633")
    with rasterio.open(path, "w", transform=from_origin(500000, 5100000, 10, 10), **profile) as d:
        d.write(np.full((1, 4, 4), 1000, np.uint16))
        d.update_tags(**tags)
    return path


def _detected(*paths, items=()):
    from agrivision.io.bands import detect_sensor
    from agrivision.io.sources import file_info

    prof = detect_sensor([file_info(p) for p in paths], list(items))
    return None if prof is None else prof.name


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_builtin_profile_detected_by_its_name_tag(tmp_path, name):
    assert _detected(_tiny_tif(tmp_path / "band.tif", SENSOR=name)) == name


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("S2A_MSIL1C_20240601T101031_N0510_R022_T33TWN_B04.tif", "sentinel-2-l1c"),
        ("S2B_MSIL2A_20240601T101031_N0510_R022_T33TWN_B04.tif", "sentinel-2-l2a"),
        ("LC09_L2SP_190027_20240601_20240603_02_T1_SR_B4.tif", "landsat-9-c2-l2"),
        ("LC08_L2SP_190027_20240601_20240603_02_T1_SR_B4.tif", "landsat-8-c2-l2"),
        ("LE07_L2SP_190027_20220601_20220603_02_T1_SR_B3.tif", "landsat-7-c2-l2"),
        ("LC08_L1TP_190027_20240601_20240603_02_T1_B4.tif", None),  # Level-1: no profile
        ("field_20240601.tif", None),
    ],
)
def test_builtin_profiles_detected_from_file_names(tmp_path, file_name, expected):
    assert _detected(_tiny_tif(tmp_path / file_name)) == expected


def test_detected_from_tags_and_stac_properties(tmp_path):
    assert _detected(_tiny_tif(tmp_path / "a.tif", SENSOR="Sentinel-2", LEVEL="L1C")) == (
        "sentinel-2-l1c"
    )
    assert _detected(_tiny_tif(tmp_path / "b.tif", PRODUCT_TYPE="S2MSI2A")) is None
    item = {"id": "x", "properties": {"platform": "sentinel-2b", "processing:level": "L2A"}}
    assert _detected(items=[item]) == "sentinel-2-l2a"
    # An exact profile name in the STAC properties wins over every rule.
    item["properties"]["agrivision:sensor"] = "generic-rgbn"
    assert _detected(items=[item]) == "generic-rgbn"


USER_PROFILE = """
name: my-camera
scale: 0.001
band_order: [c1, c2]
bands:
  c1: {common_name: red}
  c2: {common_name: nir}
detect:
  any_of: ["^MYCAM_\\\\d{4}"]
  none_of: [calibration]
"""


def test_user_profile_detected_by_its_detect_section(tmp_path, monkeypatch):
    from agrivision.io.bands import band_layers

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "my-camera.yaml").write_text(USER_PROFILE)
    monkeypatch.setenv("AGRIVISION_SENSOR_PATH", str(profiles))
    frame = _tiny_tif(tmp_path / "MYCAM_0042.tif")
    assert _detected(frame) == "my-camera"
    assert _detected(_tiny_tif(tmp_path / "MYCAM_0042_calibration.tif")) is None
    assert _detected(_tiny_tif(tmp_path / "XMYCAM_0042.tif")) is None
    # Detected as open_scene would: bands named and scaled by the user's profile.
    layers, prof = band_layers([str(frame)], bands=["c1"])
    assert prof is not None and prof.name == "my-camera"
    assert layers[(str(frame), 1)] == ("red", 0.001, 0.0, None)


@pytest.mark.parametrize(
    ("detect", "match"),
    [
        ("detect: {priority: 1}", "any_of or all_of"),
        ('detect: {any_of: ["(unclosed"]}', "not a regular expression"),
        ("detect: {any_of: [x], sometimes: [y]}", "sometimes"),
    ],
)
def test_invalid_detect_sections(tmp_path, detect, match):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nband_order: [a]\nbands: {{a: {{common_name: red}}}}\n{detect}\n")
    with pytest.raises(SensorError, match=match):
        load_profile(path)

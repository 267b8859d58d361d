"""Kept scenes written as a STAC ItemCollection / file list that open_scene reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from agrivision.errors import ConfigError, OutputError
from agrivision.io.scene import open_scene
from agrivision.screening import ScreenConfig, load_screen_config, screen, write_selection

REPO = Path(__file__).resolve().parents[2]


def _scene(path: Path, cloudy_cols: int, date: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    refl = (1000 + 3000 * rng.random((2, 64, 64))).astype(np.uint16)
    scl = np.full((64, 64), 4, np.uint8)
    scl[:, :cloudy_cols] = 8
    profile = dict(
        driver="GTiff",
        width=64,
        height=64,
        count=3,
        dtype="uint16",
        crs="EPSG:32633",
        transform=from_origin(500000, 5800000, 10, 10),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.concatenate([refl, scl[None].astype(np.uint16)]))
        dst.descriptions = ("B04", "B08", "SCL")
        dst.update_tags(DATETIME=date, SENSOR="sentinel-2-l2a", PROCESSING_BASELINE="04.00")


@pytest.fixture
def collection(tmp_path):
    _scene(tmp_path / "a.tif", 0, "2024-06-01T10:00:00", 1)
    _scene(tmp_path / "b.tif", 48, "2024-06-11T10:00:00", 2)  # 75 % cloud: dropped
    _scene(tmp_path / "c.tif", 8, "2024-06-21T10:00:00", 3)
    return tmp_path


def test_stac_selection_opens_with_open_scene(collection, tmp_path):
    result = screen(collection)
    assert list(result.table["keep"]) == [True, False, True]
    path, written, skipped = write_selection(result, tmp_path / "kept.json")
    assert (written, skipped) == (2, 0)
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    item = doc["features"][0]
    assert item["properties"]["proj:epsg"] == 32633 and len(item["bbox"]) == 4
    scene = open_scene(path)
    assert scene.sizes["time"] == 2 and {"red", "nir", "scl"} <= set(scene.data_vars)
    dates = [str(t)[:10] for t in scene["time"].values]
    assert dates == ["2024-06-01", "2024-06-21"]


def test_file_list_selection(collection, tmp_path):
    path, written, _ = write_selection(screen(collection), tmp_path / "kept.txt")
    files = path.read_text().split()
    assert [Path(f).name for f in files] == ["a.tif", "c.tif"] and written == 2
    assert open_scene(files).sizes["time"] == 2


def test_dates_of_multidate_files_are_left_out_of_selections(tmp_path):
    data = np.zeros((3, 20, 20), np.uint8)
    profile = dict(
        driver="GTiff",
        width=20,
        height=20,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(0, 0, 10, 10),
    )
    with rasterio.open(tmp_path / "clm.tif", "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("2020-01-01", "2020-01-11", "2020-01-21")
        dst.update_tags(CONTENT="cloud mask")
    result = screen(tmp_path / "clm.tif")
    assert list(result.table["band"]) == [1, 2, 3]
    assert list(result.table["cloud_fraction"]) == [0.0, 0.0, 0.0]
    _, written, skipped = write_selection(result, tmp_path / "kept.json")
    assert (written, skipped) == (0, 3)


def test_selection_does_not_overwrite_unless_asked(collection, tmp_path):
    (tmp_path / "kept.txt").write_text("keep me")
    with pytest.raises(OutputError):
        write_selection(screen(collection), tmp_path / "kept.txt", overwrite=False)
    assert (tmp_path / "kept.txt").read_text() == "keep me"


def test_default_config_file_matches_the_code_defaults():
    assert load_screen_config(REPO / "config" / "screen-default.yaml") == ScreenConfig()
    assert load_screen_config(None) == ScreenConfig()


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("keep:\n  max_cloud: 0.3\n")
    with pytest.raises(ConfigError, match="max_cloud"):
        load_screen_config(bad)
    bad.write_text("read:\n  max_pixels: 10\n")
    with pytest.raises(ConfigError, match=r"read\.max_pixels"):
        load_screen_config(bad)

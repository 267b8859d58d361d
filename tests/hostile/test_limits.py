"""Pixel ceilings and the network rule of :mod:`agrivision.limits`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hostile.inputs import s2
from PIL import Image

from agrivision import limits
from agrivision.errors import ConfigError, ResourceLimitError, SourceError
from agrivision.io.scene import open_scene


def test_scene_ceiling_from_environment(tmp_path, monkeypatch):
    path = s2(tmp_path)  # 32 x 32
    monkeypatch.setenv(limits.ENV_MAX_SCENE_PIXELS, "1024")
    assert open_scene(path).sizes["x"] == 32  # exactly at the ceiling
    monkeypatch.setenv(limits.ENV_MAX_SCENE_PIXELS, "1023")
    with pytest.raises(ResourceLimitError, match=r"1,024 pixels.*AGRIVISION_MAX_SCENE_PIXELS"):
        open_scene(path)


def test_pixel_limits_context_restores_environment(monkeypatch):
    monkeypatch.delenv(limits.ENV_MAX_PIXELS, raising=False)
    with limits.pixel_limits(max_pixels=10):
        assert limits.max_pixels() == 10
        with pytest.raises(ResourceLimitError, match="field window would materialise 12"):
            limits.check_pixels((3, 4), what="field window")
    assert limits.max_pixels() == limits.DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_bad_ceiling_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv(limits.ENV_MAX_PIXELS, value)
    with pytest.raises(ConfigError, match="AGRIVISION_MAX_PIXELS"):
        limits.max_pixels()


def test_drone_frame_is_checked_before_it_is_read(tmp_path, monkeypatch):
    from agrivision.drone.micasense import read_metadata

    path = tmp_path / "IMG_0001_1.tif"
    Image.fromarray(np.zeros((64, 64), np.uint16)).save(path)
    monkeypatch.setenv(limits.ENV_MAX_PIXELS, "4095")
    with pytest.raises(ResourceLimitError, match="drone frame would materialise 4,096"):
        read_metadata(path)


@pytest.mark.parametrize(
    ("path", "remote"),
    [
        ("https://example.com/a.tif", True),
        ("s3://bucket/a.tif", True),
        ("/vsicurl/http://x/a.tif", True),
        ("/vsis3/bucket/a.tif", True),
        ("/vsizip//vsicurl/https://x/a.zip/a.tif", True),
        ("/data/https_mirror/a.tif", False),
        ("/vsizip/local.zip/a.shp", False),
        ("C:/data/a.tif", False),
    ],
)
def test_is_remote(path, remote):
    assert limits.is_remote(path) is remote


def _remote_item(tmp_path):
    item = {
        "type": "Feature", "id": "x", "properties": {"datetime": "2024-06-12T00:00:00Z"},
        "assets": {"red": {"href": "https://example.invalid/red.tif", "roles": ["data"]}},
    }  # fmt: skip
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    return path


def test_remote_assets_need_explicit_permission(tmp_path, monkeypatch):
    """Allowed, agrivision goes on to GDAL (which fails on the .invalid host without any
    connection: the resolver refuses it); refused, GDAL is never asked."""
    import agrivision.io.bands as bands_mod

    path = _remote_item(tmp_path)
    asked: list[str] = []

    def fake_file_info(p):
        asked.append(str(p))
        raise SourceError("stopped before GDAL", source=p)

    monkeypatch.setattr(bands_mod, "file_info", fake_file_info)
    with pytest.raises(SourceError, match="remote data"):
        open_scene(path)
    assert asked == []
    with pytest.raises(SourceError, match="stopped before GDAL"):
        open_scene(path, allow_remote=True)
    assert asked == ["/vsicurl/https://example.invalid/red.tif"]
    monkeypatch.setenv(limits.ENV_ALLOW_REMOTE, "1")
    with pytest.raises(SourceError, match="stopped before GDAL"):
        open_scene(path)


def test_remote_container_may_reference_remote_data():
    limits.check_remote_reference("https://x/b.tif", container="https://x/item.json")
    with pytest.raises(SourceError, match="remote data"):
        limits.check_remote_reference("s3://x/b.tif", container="item.json", allow_remote=False)


def test_screening_refuses_remote_assets_of_a_local_item(tmp_path):
    from agrivision.screening.scenes import discover

    with pytest.raises(SourceError, match="remote data"):
        discover(_remote_item(tmp_path))

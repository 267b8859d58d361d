"""Remote reads: GDAL's HTTP settings, and which STAC Items may reach the network."""

from __future__ import annotations

import json
import os

import pytest

from agrivision.errors import SourceError
from agrivision.io.remote import GDAL_HTTP_OPTIONS, SEARCHED, gdal_http_env, reads_remote
from agrivision.io.scene import open_scene
from agrivision.limits import ENV_ALLOW_REMOTE


def test_gdal_http_env_sets_options_keeps_the_users_and_restores(monkeypatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "7")
    monkeypatch.delenv("GDAL_DISABLE_READDIR_ON_OPEN", raising=False)
    with gdal_http_env() as options:
        assert os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
        assert os.environ["GDAL_HTTP_MERGE_CONSECUTIVE_RANGES"] == "YES"
        assert options["GDAL_HTTP_MAX_RETRY"] == "7"  # the user's value wins
    assert "GDAL_DISABLE_READDIR_ON_OPEN" not in os.environ
    assert os.environ["GDAL_HTTP_MAX_RETRY"] == "7"
    assert set(options) == set(GDAL_HTTP_OPTIONS)


def _item(tmp_path, searched: bool):
    props = {"datetime": "2024-06-01T00:00:00Z", "platform": "sentinel-2a"}
    if searched:
        props[SEARCHED] = "https://earth-search.aws.element84.com/v1"
    # nothing listens on port 9 of the loopback: a read fails at once, without network
    item = {"type": "Feature", "id": "a", "properties": props,
            "assets": {"red": {"href": "http://127.0.0.1:9/B04.tif", "roles": ["data"]}}}  # fmt: skip
    path = tmp_path / ("searched.json" if searched else "local.json")
    path.write_text(json.dumps(item))
    return path


def test_only_searched_items_reach_the_network_unasked(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ENV_ALLOW_REMOTE, raising=False)
    with pytest.raises(SourceError, match="refers to remote data"):
        open_scene(str(_item(tmp_path, searched=False)))
    # a searched item is read: here the (absent) server answers, not the remote rule
    with pytest.raises(SourceError, match="not a readable raster") as info:
        open_scene(str(_item(tmp_path, searched=True)))
    assert "server is up" in str(info.value)


def test_reads_remote(tmp_path) -> None:
    assert reads_remote([str(_item(tmp_path, searched=True))])
    assert reads_remote(["https://host/x.tif"])
    local = tmp_path / "local-only.json"
    local.write_text(json.dumps({"type": "Feature", "assets": {"a": {"href": "./x.tif"}}}))
    assert not reads_remote([str(local), str(tmp_path / "x.tif")])

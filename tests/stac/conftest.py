"""A small Sentinel-2 L2A-like collection served as it is on the Internet: a STAC API
(rustac) whose Items point at COGs on an HTTP server with range requests (uvicorn).

Three dates over one 1024 x 1024 10 m tile (512-pixel COG blocks), red and nir bands, a
synthetic SCL at 20 m (256-pixel blocks); the fields lie in the tile's top-left block:

- 2024-06-01: clouds over the bottom half of the tile (``eo:cloud_cover`` 50), clear over
  the fields: kept;
- 2024-06-21: clouds over the top-left quarter only (``eo:cloud_cover`` 25): dropped;
- 2024-07-01: ``eo:cloud_cover`` 99, its assets missing on the server: dropped unread.

Asset keys follow Earth Search v1 (``red``, ``nir``, ``scl``, plus a ``visual`` preview and
an ``aot`` band that must not be read), with ``earthsearch:boa_offset_applied`` false and
baseline 05.10: the pixels carry the +1000 DN offset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from stac_servers import CLOUDY, COLLECTION, HAZY, KEPT, CountingFiles, file_server, stac_api

from agrivision.synthetic import write_synthetic

_KEYS = {"B04": "red", "B08": "nir", "SCL": "scl"}


@dataclass
class Collection:
    folder: Path  # COGs, fields.geojson, local items (relative hrefs)
    fields: Path
    items: list[dict]  # Items with hrefs relative to the file server root


@dataclass
class Remote:
    """Servers of one test: the STAC API URL and the file server's counter."""

    stac: str
    files: CountingFiles
    base: str
    collection: Collection


@pytest.fixture(scope="session")
def s2_collection(tmp_path_factory) -> Collection:
    folder = tmp_path_factory.mktemp("stac-collection")
    files = write_synthetic(
        folder, seed=3, shape=(1024, 1024), dates=[KEPT, CLOUDY], bands=["B04", "B08"],
        clouds=False, chunks=512,
    )  # fmt: skip
    _write_scl(files.rasters[KEPT]["SCL"], lambda rows, cols: rows >= 256)
    _write_scl(files.rasters[CLOUDY]["SCL"], lambda rows, cols: (rows < 256) & (cols < 256))
    fields = gpd.read_file(files.fields).to_crs(32633)
    left, top = 500000.0, 5800000.0
    b = fields.geometry.bounds
    inside = (b.minx > left + 200) & (b.maxx < left + 4800) & (b.maxy < top - 200)
    inside &= b.miny > top - 4800
    chosen = fields[inside].head(6)
    assert len(chosen) >= 3
    path = folder / "my_fields.geojson"
    chosen.to_crs(4326).to_file(path, driver="GeoJSON")
    items = []
    for day, cover in ((KEPT, 50.0), (CLOUDY, 25.0)):
        item = json.loads(files.item_files[day].read_text())
        item["collection"] = COLLECTION
        item["properties"].update({
            "eo:cloud_cover": cover, "earthsearch:boa_offset_applied": False,
            "platform": "sentinel-2b",
        })  # fmt: skip
        item["assets"] = {_KEYS[k]: a for k, a in item["assets"].items()}
        item["assets"]["visual"] = {
            "href": "./missing-visual.tif", "roles": ["visual"],
            "eo:bands": [{"name": n} for n in ("red", "green", "blue")],
        }  # fmt: skip
        item["assets"]["aot"] = {"href": "./missing-aot.tif", "roles": ["data"]}
        items.append(item)
    hazy = json.loads(json.dumps(items[0]))
    hazy["id"] = hazy["id"].replace("20240601", "20240701")
    hazy["properties"].update({"datetime": f"{HAZY}T00:00:00Z", "eo:cloud_cover": 99.0})
    for asset in hazy["assets"].values():
        asset["href"] = "./missing-" + asset["href"][2:]
    items.append(hazy)
    return Collection(folder=folder, fields=path, items=items)


def _write_scl(path: Path, cloudy) -> None:
    """Overwrite an SCL COG: vegetation (4), cloud (9) where ``cloudy(rows, cols)``."""
    with rasterio.open(path) as src:
        profile, shape = src.profile, src.shape
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    scl = np.where(cloudy(rows, cols), 9, 4).astype(profile["dtype"])
    profile.update(driver="COG", blocksize=256, compress="deflate")
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    os.remove(path)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(scl, 1)


@pytest.fixture
def remote(s2_collection, tmp_path, monkeypatch) -> Remote:
    """The collection on fresh servers (a new port: GDAL's cache of another test's URLs
    does not apply); one retry only, so that failure tests stay short."""
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.1")
    with file_server(s2_collection.folder) as (base, counter):
        items = json.loads(json.dumps(s2_collection.items))
        for item in items:
            for asset in item["assets"].values():
                asset["href"] = f"{base}/{asset['href'][2:]}"
        with stac_api(items, tmp_path) as url:
            yield Remote(stac=url, files=counter, base=base, collection=s2_collection)

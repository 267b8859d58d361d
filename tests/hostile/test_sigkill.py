"""Atomic outputs survive SIGKILL: each target holds the old or the new complete file.

A child forked from a forkserver (single-threaded, with this module already imported, so
a round costs milliseconds, not an import, and no lock of the test process's thread pools
is inherited) rewrites every target in a loop, alternating two known versions, through each writer:
``to_cog``, ``write_vector`` (GeoJSON, CSV, GeoPackage, GeoParquet) and ``atomic_path``
(JSON text). The parent kills it with SIGKILL at seeded random moments, then opens every
target and checks that it is one of the two complete versions. Leftovers may only be
agrivision's temporary names: hidden, with ``.partial`` or ``.staging`` in the name.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import signal
import sys
import time
import warnings
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr

from agrivision.io.atomic import atomic_path
from agrivision.io.cog import to_cog
from agrivision.io.vector import write_vector

ROUNDS = 20
TARGETS = ("scene.tif", "fields.geojson", "table.csv", "fields.gpkg", "fields.parquet", "run.json")
TEMPORARY = re.compile(r"^\.(scene|fields|table|run)\..*\.(partial|staging)\b")

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="needs forkserver and SIGKILL",
)


def _raster(version: int) -> xr.DataArray:
    data = np.full((256, 256), version, dtype=np.float32)
    ys = 5800000 - (np.arange(256) + 0.5) * 10
    xs = 500000 + (np.arange(256) + 0.5) * 10
    arr = xr.DataArray(data, dims=("y", "x"), coords={"y": ys, "x": xs}, name="v")
    return arr.rio.write_crs("EPSG:32633")


def _table(version: int) -> gpd.GeoDataFrame:
    n = 200 * version  # versions differ in size, so a torn file cannot pass for either
    boxes = shapely.box(
        np.arange(n) * 10.0 + 500000, 5799000, np.arange(n) * 10.0 + 500008, 5799008
    )
    return gpd.GeoDataFrame(
        {"field_id": np.arange(n), "v": np.full(n, version)}, geometry=boxes, crs=32633
    )


def write_all(folder: Path, version: int) -> None:
    """Every writer, once, with the content of ``version`` (1 or 2)."""
    table = _table(version)
    # No thread pool: a pool started in the forkserver before fork() would leave locks held.
    with dask.config.set(scheduler="synchronous"):
        to_cog(_raster(version), folder / "scene.tif", overviews=None)
    write_vector(table, folder / "fields.geojson")
    write_vector(table, folder / "table.csv", wkt=True)
    write_vector(table, folder / "fields.gpkg")
    write_vector(table, folder / "fields.parquet")
    with atomic_path(folder / "run.json") as tmp:
        tmp.write_text(json.dumps({"version": version, "pad": "x" * 100_000 * version}))


def version_of(path: Path) -> int:
    """The version a complete target holds; any exception means a torn file."""
    name = path.name
    if name == "scene.tif":
        with rasterio.open(path) as src:
            values = np.unique(src.read(1))
        assert len(values) == 1
        return int(values[0])
    if name == "run.json":
        doc = json.loads(path.read_text())
        assert len(doc["pad"]) == 100_000 * doc["version"]
        return doc["version"]
    if name == "table.csv":
        table = pd.read_csv(path)
    elif name == "fields.parquet":
        table = gpd.read_parquet(path)
    else:
        table = pyogrio.read_dataframe(path)
    (version,) = set(table["v"])
    assert len(table) == 200 * version and sorted(table["field_id"]) == list(range(len(table)))
    return int(version)


def _writer_loop(folder: str, started) -> None:
    warnings.simplefilter("ignore")
    version = 2
    while True:
        write_all(Path(folder), version)
        started.set()
        version = 3 - version


@pytest.mark.slow
def test_sigkill_never_leaves_a_partial_target(tmp_path):
    write_all(tmp_path, 1)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    rng = random.Random(8)
    seen: set[tuple[str, int]] = set()
    torn: set[str] = set()
    for _ in range(ROUNDS):
        started = ctx.Event()
        child = ctx.Process(target=_writer_loop, args=(str(tmp_path), started), daemon=True)
        child.start()
        if rng.random() < 0.5:  # half the kills land in the first pass, half later
            assert started.wait(timeout=120), "the writer never finished a pass"
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=10)
        assert child.exitcode == -signal.SIGKILL
        for name in TARGETS:
            version = version_of(tmp_path / name)
            assert version in (1, 2)
            seen.add((name, version))
        leftovers = {p.name for p in tmp_path.iterdir()} - set(TARGETS)
        assert all(TEMPORARY.match(n) for n in leftovers), leftovers
        torn.update(leftovers)  # a kill during a write leaves its temporary file
    # The loop really replaced the files: each target was seen in both versions.
    assert {name for name, v in seen if v == 2} == set(TARGETS), seen
    print(f"temporary files left by {ROUNDS} kills: {sorted(torn)}")

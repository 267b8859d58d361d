"""The report's memory grows far less than the scene: peak RSS on a 6000 x 6000 scene exceeds
that on a 1024 x 1024 one (same chunks, same code paths; 34x the pixels) by less than 2.5
uncompressed float32 bands of the large scene (2.5 x 137 MiB), so no stage holds the scene's
four bands, or three of its index rasters, at once.

Not one band, as this test claimed until it measured the report itself (below): measured
honestly the 6000² run peaks 288 MB above the 1024² one. Two stages grow with the scene:
the cloud mask's overlapping-block graph, whose dask order keeps about 160 reflectance
chunks alive while writing the indices (+400 MB at 6000², +52 MB without the mask), and the
zones, zoned in full-width bands of one chunk row (+250-320 MB). Both are open work.

The peak is the report process's own: the kernel's high-water mark of its address space
(``VmHWM``), read by the process itself at exit. Not ``wait4``'s ``ru_maxrss``: Python starts
children with ``vfork`` + ``exec``, and Linux carries the high-water mark of the address space
left at ``exec`` (the *test process's*) into the child's ``ru_maxrss``. That made this test
measure max(pytest's own peak, the report's): run after tests that had grown the pytest
process (``test_cluster.py``'s imports and fixtures), both runs read the same inflated number
and the test passed whatever the report did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status"),
]

ORIGIN = (600000.0, 5300000.0)
FIELD_PX = 100  # 1 km square fields, 3600 of them on the large scene
BANDS = ("B02", "B03", "B04", "B08")
CONFIG = "indices: [NDVI]\nscene: {chunks: 512}\noutput: {max_cards: 4}\n"


def write_scene(root: Path, size: int, block: int = 512) -> tuple[list[Path], Path]:
    """Four uint16 Sentinel-2 L2A band files (written block by block) and square fields.

    NDVI is per field a level between 0.55 and 0.85 plus a west-east ramp of 0.1 (three
    clean management zones); every third row of fields has a 10 x 10 pixel stressed patch.
    """
    root.mkdir()
    tags = {"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "05.10",
            "DATETIME": "2024-06-15T10:30:00"}  # fmt: skip
    n = size // FIELD_PX
    level = np.random.default_rng(0).uniform(0.55, 0.85, (n + 1, n + 1))
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16",
                   crs="EPSG:32633", transform=from_origin(*ORIGIN, 10, 10), nodata=0,
                   tiled=True, blockxsize=block, blockysize=block, compress="deflate", zlevel=1)  # fmt: skip
    paths = [root / f"T33TWN_20240615_{b}.tif" for b in BANDS]
    outs = [rasterio.open(p, "w", **profile) for p in paths]
    try:
        for out in outs:
            out.update_tags(**tags)
        for r0 in range(0, size, block):
            for c0 in range(0, size, block):
                rows, cols = np.mgrid[r0 : min(r0 + block, size), c0 : min(c0 + block, size)]
                ndvi = (
                    level[rows // FIELD_PX, cols // FIELD_PX] + 0.1 * (cols % FIELD_PX) / FIELD_PX
                )
                patch = (
                    (rows % FIELD_PX < 10) & (cols % FIELD_PX < 10) & (rows // FIELD_PX % 3 == 0)
                )
                ndvi = np.where(patch, 0.45, ndvi)
                red = np.full(ndvi.shape, 0.05)
                nir = red * (1 + ndvi) / (1 - ndvi)
                window = Window(c0, r0, cols.shape[1], rows.shape[0])
                for out, refl in zip(outs, (red * 0.8, red * 1.3, red, nir), strict=True):
                    out.write(np.round(refl * 10000 + 1000).astype(np.uint16)[None], window=window)
    finally:
        for out in outs:
            out.close()
    x0, y0 = ORIGIN
    i, j = (a.ravel() for a in np.mgrid[0:n, 0:n])
    edge, road = FIELD_PX * 10, 10  # metres
    geoms = shapely.box(x0 + j * edge + road, y0 - (i + 1) * edge + road,
                        x0 + (j + 1) * edge - road, y0 - i * edge - road)  # fmt: skip
    fields = root / "fields.gpkg"
    gpd.GeoDataFrame({"field_id": np.arange(1, n * n + 1)}, geometry=geoms, crs="EPSG:32633")\
        .to_file(fields)  # fmt: skip
    return paths, fields


# Runs the CLI as ``python -m agrivision`` does and, at exit, writes the process's VmHWM (kB)
# to the file named by its first argument.
_MEASURED_CLI = """\
import atexit, runpy, sys

peak_file = sys.argv.pop(1)


def write_peak():
    with open("/proc/self/status") as status, open(peak_file, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])


atexit.register(write_peak)  # registered first: runs last
sys.argv[0] = "agrivision"
runpy.run_module("agrivision", run_name="__main__", alter_sys=True)
"""


def peak_rss_of_cli(args: list[str], peak_file: Path, env: dict[str, str] | None = None) -> int:
    """Run ``agrivision ARGS`` in a fresh interpreter; its own peak RSS in bytes (the
    kernel's high-water mark of its address space since ``exec``; no sampling)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED_CLI, str(peak_file), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return int(peak_file.read_text()) * 1024


def peak_rss_of_report(sources: list[Path], fields: Path, config: Path, outdir: Path) -> int:
    """Run ``agrivision report`` in a fresh interpreter; its own peak RSS in bytes."""
    # GDAL's block cache is a fixed-size cache (default 5% of RAM), not a copy of the scene;
    # it is kept small so that what is measured is agrivision's own memory.
    env = {**os.environ, "GDAL_CACHEMAX": "32"}
    args = ["report", *map(str, sources), "--fields", str(fields), "-o", str(outdir),
            "--config", str(config), "--quiet"]  # fmt: skip
    return peak_rss_of_cli(args, outdir.with_name(outdir.name + ".peak"), env)


def test_the_peak_is_the_cli_process_own(tmp_path):
    """The measure does not see the test process's memory: a peak of 1 GiB here, freed
    before the CLI starts, does not show in the CLI's peak (``wait4`` would report it)."""
    ballast = np.ones(2**30 // 8)  # touched: resident
    del ballast
    assert peak_rss_of_cli(["--version"], tmp_path / "peak") < 2**29


def test_report_memory_does_not_grow_with_the_scene(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    small = peak_rss_of_report(*write_scene(tmp_path / "small", 1024), config, tmp_path / "r1")
    large = peak_rss_of_report(*write_scene(tmp_path / "large", 6000), config, tmp_path / "r2")
    one_band = 6000 * 6000 * 4
    assert large - small < 2.5 * one_band, (
        f"peak RSS {large / 2**20:.0f} MB on 6000² vs {small / 2**20:.0f} MB on 1024²: "
        f"+{(large - small) / 2**20:.0f} MB, one float32 band is {one_band / 2**20:.0f} MB"
    )
    with rasterio.open(tmp_path / "r2" / "classes.tif") as src:  # the run did the work
        assert src.shape == (6000, 6000)
        first_field = src.read(1, window=Window(0, 0, FIELD_PX, FIELD_PX))
    assert np.isin(first_field[2:8, 2:8], (2, 3)).all()  # its patch: stressed or pest
    assert (first_field[20:80, 20:80] == 1).mean() > 0.9  # the rest: healthy

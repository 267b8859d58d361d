"""The report's memory does not grow with the scene: peak RSS on a 6000 x 6000 scene exceeds
that on a 1024 x 1024 one (same chunks, same code paths) by less than ONE uncompressed
float32 band of the large scene (144 MB), so no stage can hold a whole band."""

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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

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


def peak_rss_of_report(sources: list[Path], fields: Path, config: Path, outdir: Path) -> int:
    """Run ``agrivision report`` in a fresh interpreter; its peak RSS in bytes (kernel's
    accounting via wait4, no sampling)."""
    # GDAL's block cache is a fixed-size cache (default 5% of RAM), not a copy of the scene;
    # it is kept small so that what is measured is agrivision's own memory.
    env = {**os.environ, "GDAL_CACHEMAX": "32"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agrivision", "report", *map(str, sources), "--fields",
         str(fields), "-o", str(outdir), "--config", str(config), "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
    proc.stderr.close()
    return usage.ru_maxrss * 1024  # kilobytes on Linux


def test_report_memory_does_not_grow_with_the_scene(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    small = peak_rss_of_report(*write_scene(tmp_path / "small", 1024), config, tmp_path / "r1")
    large = peak_rss_of_report(*write_scene(tmp_path / "large", 6000), config, tmp_path / "r2")
    one_band = 6000 * 6000 * 4
    assert large - small < one_band, (
        f"peak RSS {large / 2**20:.0f} MB on 6000² vs {small / 2**20:.0f} MB on 1024²: "
        f"+{(large - small) / 2**20:.0f} MB, one float32 band is {one_band / 2**20:.0f} MB"
    )
    with rasterio.open(tmp_path / "r2" / "classes.tif") as src:  # the run did the work
        assert src.shape == (6000, 6000)
        first_field = src.read(1, window=Window(0, 0, FIELD_PX, FIELD_PX))
    assert np.isin(first_field[2:8, 2:8], (2, 3)).all()  # its patch: stressed or pest
    assert (first_field[20:80, 20:80] == 1).mean() > 0.9  # the rest: healthy

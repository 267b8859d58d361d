"""Vectorising a class raster: agrivision (chunked, seams merged) vs one whole-array pass.

Usage: ``python benchmarks/vectorize.py [--quick] [--repeats N] [--size N]``

Makes (once, seeded) a 10980 x 10980 uint8 class raster in ``bench-output/`` (classes 0-4:
smooth blobs of ~100-pixel scale plus 0.2 % single-pixel speckle, as classifier output has;
tiled 512, DEFLATE). Contenders, each in a fresh subprocess per repeat:

* ``agrivision``: ``vectorize(rioxarray.open_rasterio(path, chunks=2048))`` — reads and
  polygonises chunk by chunk, merges polygons split at chunk seams, builds the GeoDataFrame
  with ``area_ha``;
* ``rasterio-whole``: the anchor, the usual recipe: read the whole array, one
  ``rasterio.features.shapes`` pass, ``shapely.geometry.shape`` per polygon, a GeoDataFrame
  with ``area_ha`` from ``.area``.

Reported: wall time of the whole job (reading included), polygon counts, peak RSS (max of
psutil polling and the child's ``ru_maxrss``) and the difference of the total area (and per
class) against the anchor. ``--quick``: a 1024 x 1024 raster with chunks of 256.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from harness import run_measured

OUT = Path(__file__).resolve().parents[1] / "bench-output"
PIXEL = 10.0
CONTENDERS = ("rasterio-whole", "agrivision")


def make_raster(path: Path, size: int, seed: int = 0) -> None:
    """Write the seeded class raster block by block (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    from scipy import ndimage

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    scale = 16  # blobs from a coarse noise grid, interpolated up
    coarse = ndimage.gaussian_filter(rng.standard_normal((size // scale + 2,) * 2), 2.0)
    # 20 % background, 50 % healthy, 15 % stressed, 8 % pest, 7 % bare
    edges = np.quantile(coarse, np.cumsum([0.20, 0.50, 0.15, 0.08]))
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8",
                   crs="EPSG:32633", transform=from_origin(300000, 5900000, PIXEL, PIXEL),
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                   nodata=0)  # fmt: skip
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, size, 512):
            rows = np.arange(r0, min(r0 + 512, size))
            grid = np.meshgrid(rows / scale, np.arange(size) / scale, indexing="ij")
            classes = np.digitize(ndimage.map_coordinates(coarse, grid, order=1), edges)
            speckle = rng.random(classes.shape) < 0.002
            classes[speckle] = rng.integers(0, 5, speckle.sum())
            window = Window(0, r0, size, len(rows))
            dst.write(classes.astype(np.uint8)[None], window=window)
    tmp.rename(path)


def worker(contender: str, raster: Path, chunk: int, result: Path) -> None:
    """Run one contender once (in a fresh process) and write its timing and areas.

    Each contender imports only what it uses (peak RSS includes the imports), before the
    timing starts.
    """
    import geopandas as gpd
    import rasterio

    if contender == "agrivision":
        import rioxarray

        from agrivision.fields.vectorize import vectorize

        t0, cpu0 = time.perf_counter(), time.process_time()
        classes = rioxarray.open_rasterio(raster, chunks={"x": chunk, "y": chunk}, lock=False)
        gdf = vectorize(classes.squeeze("band", drop=True))
    else:
        import rasterio.features
        from shapely.geometry import shape

        t0, cpu0 = time.perf_counter(), time.process_time()
        with rasterio.open(raster) as src:
            arr, transform, crs = src.read(1), src.transform, src.crs
        found = rasterio.features.shapes(arr, mask=arr > 0, transform=transform)
        geoms, codes = [], []
        for geojson, value in found:
            geoms.append(shape(geojson))
            codes.append(int(value))
        gdf = gpd.GeoDataFrame({"class": codes}, geometry=geoms, crs=crs)
        gdf["area_ha"] = gdf.area / 1e4
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # planar areas of the geometries on both sides (agrivision's area_ha is ellipsoidal)
    areas = gdf.assign(planar_ha=gdf.area / 1e4).groupby("class")["planar_ha"].sum()
    result.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "peak": peak,
                "polygons": len(gdf),
                "areas": {str(k): float(v) for k, v in areas.items()},
            }
        )
    )


def run_contender(contender: str, raster: Path, chunk: int) -> dict:
    """Run a contender in a fresh subprocess; peak RSS of its process tree."""
    result = OUT / f"vectorize_result_{contender}.json"
    cmd = [sys.executable, __file__, "--worker", contender, str(raster), str(chunk), str(result)]
    polled = run_measured(cmd)
    out = json.loads(result.read_text())
    out["peak"] = max(out["peak"], polled)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1024^2 raster, chunks of 256")
    parser.add_argument("--size", type=int, help="raster side in pixels (default 10980)")
    parser.add_argument("--repeats", type=int, default=None, help="fresh runs per contender")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, raster, chunk, result = args.worker
        worker(contender, Path(raster), int(chunk), Path(result))
        return

    OUT.mkdir(exist_ok=True)
    size = args.size or (1024 if args.quick else 10980)
    chunk = 256 if args.quick else 2048
    repeats = args.repeats or (3 if args.quick else 2)
    raster = OUT / f"vectorize_classes_{size}.tif"
    t = time.perf_counter()
    make_raster(raster, size)
    print(f"raster {raster.name} ready ({time.perf_counter() - t:.1f} s)", file=sys.stderr)

    runs: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
    for _ in range(repeats):
        for c in CONTENDERS:
            runs[c].append(run_contender(c, raster, chunk))
    ref = runs["rasterio-whole"][0]
    ref_time = statistics.median(r["seconds"] for r in runs["rasterio-whole"])
    lines = [
        f"Class raster {size} x {size} uint8 (classes 0-4, tiled 512, DEFLATE), agrivision "
        f"chunks {chunk}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end); "
        f"median of {repeats} fresh runs; CPU: process time, all threads",
        "",
        "| contender | time (s) | CPU (s) | vs anchor | polygons | peak RSS (MB) "
        "| total planar area diff vs anchor (ha) | max class area diff (ha) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CONTENDERS:
        secs = statistics.median(r["seconds"] for r in runs[c])
        cpu = statistics.median(r["cpu"] for r in runs[c])
        peak = max(r["peak"] for r in runs[c]) / 2**20
        areas = runs[c][0]["areas"]
        total = sum(areas.values()) - sum(ref["areas"].values())
        per_class = max(abs(areas.get(k, 0.0) - v) for k, v in ref["areas"].items())
        lines.append(
            f"| {c} | {secs:.2f} | {cpu:.2f} | {ref_time / secs:.2f}x | {runs[c][0]['polygons']:,} "
            f"| {peak:,.0f} | {total:.2e} | {per_class:.2e} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Zonal statistics: agrivision vs exactextract (the exact anchor) vs rasterstats.

Usage: ``python benchmarks/zonal.py [--quick] [--repeats N]``

Makes (once, seeded) a 10980 x 10980 float32 NDVI-like GeoTIFF (smooth field + noise + NaN
"cloud" blobs; tiled 512, DEFLATE) in ``bench-output/`` and jittered grids of ~11 ha
irregular quadrilateral fields: ``tiled`` = adjacent fields covering a square region in the
middle of the raster (a farming district), ``spread`` = one field per grid cell over the whole
raster (every chunk is read). Each contender runs in a fresh subprocess per repeat and
reports wall time of the zonal call (raster opened lazily inside the timing; fields are in
memory), peak RSS (max of psutil polling and the child's ``ru_maxrss``) and its per-field means,
compared with exactextract's. rasterstats (pixel-centre, not exact) is run on the 1,000-field
case only: it is ~10x slower. ``--quick``: a 2048 x 2048 raster with 200 fields.
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
import pandas as pd
from harness import run_measured

OUT = Path(__file__).resolve().parents[1] / "bench-output"
STATS = ("count", "mean", "std", "min", "max", "median", "p10", "p90")
CHUNK = 1024
FIELD_HA = 11.0
PIXEL = 10.0


def make_raster(path: Path, size: int, seed: int = 0) -> None:
    """Write the seeded NDVI-like test raster block by block (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    waves = rng.uniform(0.2, 3.0, size=(6, 2)) * 2 * np.pi / size
    phases = rng.uniform(0, 2 * np.pi, size=6)
    blobs = rng.uniform(0, size, size=(max(size // 400, 4), 2))
    radius = size / 150
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs="EPSG:32633",
        transform=from_origin(300000, 5900000, PIXEL, PIXEL),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        predictor=3,
        nodata=np.nan,
    )
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, size, 512):
            rows = np.arange(r0, min(r0 + 512, size))[:, None].astype(np.float64)
            cols = np.arange(size)[None, :].astype(np.float64)
            smooth = sum(
                np.sin(k[0] * rows + k[1] * cols + p) for k, p in zip(waves, phases, strict=True)
            )
            ndvi = 0.45 + 0.07 * smooth + rng.normal(0, 0.05, (len(rows), size))
            for by, bx in blobs:
                if abs(by - r0 - 256) < radius + 256:
                    ndvi[(rows - by) ** 2 + (cols - bx) ** 2 < radius**2] = np.nan
            dst.write(ndvi.astype(np.float32)[None], window=Window(0, r0, size, len(rows)))
    tmp.rename(path)


def make_fields(n: int, size: int, layout: str, seed: int = 1):
    """Jittered grid of ~11 ha irregular quadrilaterals (GeoDataFrame in EPSG:32633)."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    side = np.sqrt(FIELD_HA * 1e4)
    k = int(np.ceil(np.sqrt(n)))
    extent = size * PIXEL
    x0, y1 = 300000.0, 5900000.0
    if layout == "tiled":  # adjacent fields sharing jittered corners, centred in the raster
        start = np.array([x0, y1 - extent]) + (extent - k * side) / 2
        nodes = start + side * np.stack(np.meshgrid(np.arange(k + 1), np.arange(k + 1)), -1)
        nodes = nodes + rng.uniform(-0.2, 0.2, nodes.shape) * side
        quads = np.stack([nodes[:-1, :-1], nodes[:-1, 1:], nodes[1:, 1:], nodes[1:, :-1]], 2)
    else:  # one field per grid cell over the whole raster
        cell = extent / k
        centres = np.array([x0, y1 - extent]) + cell * (
            np.stack(np.meshgrid(np.arange(k), np.arange(k)), -1) + 0.5
        )
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * side / 2
        quads = centres[:, :, None, :] + corners + rng.uniform(-0.2, 0.2, (k, k, 4, 2)) * side
    quads = quads.reshape(-1, 4, 2)[:n]
    geoms = shapely.polygons(np.concatenate([quads, quads[:, :1]], axis=1))
    return gpd.GeoDataFrame({"field_id": np.arange(1, n + 1)}, geometry=geoms, crs=32633)


def worker(contender: str, raster: Path, fields_path: Path, result: Path, chunk: int) -> None:
    """Run one contender once (in a fresh process) and write its timing and means.

    Imports happen before the clocks (wall and CPU) start; they cover opening the raster and
    the zonal call (for agrivision this includes numba initialising and loading its cached
    kernels).
    """
    import geopandas as gpd

    fields = gpd.read_parquet(fields_path)
    if contender == "agrivision":
        import rioxarray

        from agrivision.fields import zonal_stats

        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        da = rioxarray.open_rasterio(raster, chunks={"x": chunk, "y": chunk}, lock=False)
        df = zonal_stats(da.squeeze("band", drop=True), fields, stats=STATS)
    elif contender == "exactextract":
        from exactextract import exact_extract

        ops = ["count", "mean", "stdev", "min", "max", "median"]
        ops += ["quantile(q=0.1)", "quantile(q=0.9)"]
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        df = exact_extract(str(raster), fields, ops, output="pandas")
    else:
        from rasterstats import zonal_stats as rs_zonal

        stats = "count mean std min max median percentile_10 percentile_90"
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        df = pd.DataFrame(rs_zonal(fields, str(raster), nodata=np.nan, stats=stats))
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(result.with_suffix(".npy"), df["mean"].to_numpy(dtype=np.float64, na_value=np.nan))
    result.write_text(json.dumps({"seconds": seconds, "cpu": cpu, "peak": peak}))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_contender(contender: str, raster: Path, fields_path: Path, chunk: int) -> dict:
    """Run a contender in a fresh subprocess; peak RSS of its process tree."""
    result = OUT / f"result_{fields_path.stem}_{contender}.json"
    cmd = [sys.executable, __file__, "--chunk", str(chunk), "--worker", contender]
    polled = run_measured([*cmd, str(raster), str(fields_path), str(result)])
    out = json.loads(result.read_text())
    out["peak"] = max(out["peak"], polled)
    out["means"] = np.load(result.with_suffix(".npy"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2048^2 raster, 200 fields")
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per contender")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="agrivision's dask chunks")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, raster, fields_path, result = args.worker
        worker(contender, Path(raster), Path(fields_path), Path(result), args.chunk)
        return

    OUT.mkdir(exist_ok=True)
    size = 2048 if args.quick else 10980
    cases = [(200, "tiled", True)]
    if not args.quick:
        cases = [(1000, "tiled", True), (10000, "tiled", False), (10000, "spread", False)]
    raster = OUT / f"zonal_ndvi_{size}.tif"
    t = time.perf_counter()
    make_raster(raster, size)
    print(f"raster {raster.name} ready ({time.perf_counter() - t:.1f} s)", file=sys.stderr)

    # Warm numba's on-disk cache once so that no timed run pays for compilation.
    warm = OUT / "zonal_fields_warm.parquet"
    make_fields(4, size, "tiled").to_parquet(warm)
    run_contender("agrivision", raster, warm, args.chunk)

    lines = [
        f"Raster {size} x {size} float32 (tiled 512, DEFLATE); agrivision dask chunks "
        f"{args.chunk}; {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at "
        f"start); median of {args.repeats} fresh runs "
        f"(rasterstats: 1); stats: {', '.join(STATS)}",
        "",
        "| fields | layout | contender | time (s) | CPU (s) | fields/s "
        "| speed-up vs exactextract | peak RSS (MB) | max abs mean diff vs exactextract |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, layout, with_rasterstats in cases:
        fields_path = OUT / f"zonal_fields_{n}_{layout}_{size}.parquet"
        make_fields(n, size, layout).to_parquet(fields_path)
        contenders = ["exactextract", "agrivision"] + ["rasterstats"] * with_rasterstats
        runs: dict[str, list[dict]] = {c: [] for c in contenders}
        for rep in range(args.repeats):
            for c in contenders:
                if c == "rasterstats" and rep > 0:
                    continue  # ~10x slower than exactextract; one run places it
                runs[c].append(run_contender(c, raster, fields_path, args.chunk))
        ref_time = statistics.median(r["seconds"] for r in runs["exactextract"])
        ref_means = runs["exactextract"][0]["means"]
        for c in contenders:
            secs = statistics.median(r["seconds"] for r in runs[c])
            cpu = statistics.median(r["cpu"] for r in runs[c])
            peak = max(r["peak"] for r in runs[c]) / 2**20
            means = runs[c][0]["means"]
            diff = np.nanmax(np.abs(means - ref_means))
            nan_mismatch = int((np.isnan(means) != np.isnan(ref_means)).sum())
            note = f" ({nan_mismatch} NaN mismatches)" if nan_mismatch else ""
            lines.append(
                f"| {n:,} | {layout} | {c} | {secs:.2f} | {cpu:.2f} | {n / secs:,.0f} | "
                f"{ref_time / secs:.2f}x | {peak:,.0f} | {diff:.1e}{note} |"
            )
    table = "\n".join(lines)
    print(table)
    (OUT / f"zonal_{'quick' if args.quick else 'full'}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()

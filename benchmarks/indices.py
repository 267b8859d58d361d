"""NDVI, COG to COG: agrivision (open_scene -> indices.compute -> to_cog) vs rasterio + numpy.

Usage: ``python benchmarks/indices.py [--quick] [--repeats N] [--chunk PX] [--breakdown]``

Makes (once, seeded) a 10980 x 10980 two-band (red, nir) uint16 DEFLATE COG in
``bench-output/`` (Sentinel-2-like DN = reflectance x 10000, fields with smooth NDVI patterns
plus noise, nodata 0 in a few blobs), written strip by strip so that at most a 512-row strip is
in memory. Contenders, each in a fresh subprocess per repeat (imports before the clock; the
clock stops when the output COG is complete):

- ``agrivision``: ``open_scene(bands=["red", "nir"], scale=1e-4)`` -> ``compute("NDVI")`` ->
  ``to_cog`` (lazy, dask threads, chunk by chunk; the default codec, ZSTD level 1), which is
  what ``agrivision indices`` runs.
- ``agrivision-deflate``: the same writing DEFLATE (``--compress deflate``), the baseline's
  codec, to show what the codec is worth end to end.
- ``baseline``: rasterio reads both bands whole, numpy float32 NDVI (nodata -> NaN), rasterio
  writes a float32 COG with the same creation options as ``to_cog`` (DEFLATE, predictor 3,
  512 tiles, AUTO overviews with AVERAGE, NUM_THREADS=ALL_CPUS).

Reports wall time (median of repeats), Mpx/s, ratio to the baseline, peak RSS (max of psutil
polling and the child's ``ru_maxrss``) and the largest difference between the two outputs.
``--breakdown`` also times (one run each) the phases in isolation (decode both bands, NDVI in numpy, COG
encode) under GDAL settings (GDAL_NUM_THREADS for decoding, NUM_THREADS, COMPRESS and LEVEL
for COG encoding, GDAL_CACHEMAX). ``--quick``: 2048 x 2048.
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
STRIP = 512
COG_OPTIONS = {
    "compress": "DEFLATE",
    "predictor": 3,
    "blocksize": 512,
    "overviews": "AUTO",
    "overview_resampling": "AVERAGE",
    "num_threads": "ALL_CPUS",
    "bigtiff": "IF_SAFER",
}


def make_input(path: Path, size: int, seed: int = 0) -> None:
    """Write the seeded red/nir uint16 COG strip by strip (bounded memory)."""
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    waves = rng.uniform(0.5, 8.0, size=(5, 2)) * 2 * np.pi / size
    phases = rng.uniform(0, 2 * np.pi, size=5)
    blobs = rng.uniform(0, size, size=(max(size // 1000, 3), 2))
    radius = size / 100
    profile = dict(
        driver="GTiff", width=size, height=size, count=2, dtype="uint16", nodata=0,
        crs="EPSG:32633", transform=from_origin(300000, 5900000, 10, 10), tiled=True,
        blockxsize=512, blockysize=512, compress="deflate", predictor=2,
    )  # fmt: skip
    staging = path.with_suffix(".staging.tif")
    with rasterio.open(staging, "w", **profile) as dst:
        dst.descriptions = ("red", "nir")
        for r0 in range(0, size, STRIP):
            rows = np.arange(r0, min(r0 + STRIP, size))[:, None].astype(np.float64)
            cols = np.arange(size)[None, :].astype(np.float64)
            smooth = sum(
                np.sin(k[0] * rows + k[1] * cols + p) for k, p in zip(waves, phases, strict=True)
            )
            ndvi = np.clip(0.5 + 0.08 * smooth + rng.normal(0, 0.04, (len(rows), size)), -0.2, 0.9)
            red = rng.uniform(0.03, 0.09, ndvi.shape)
            nir = red * (1 + ndvi) / (1 - ndvi)
            dn = np.stack([red, nir]) * 10000
            for by, bx in blobs:
                dn[:, (rows[:, 0] - by)[:, None] ** 2 + (cols - bx) ** 2 < radius**2] = 0
            dst.write(dn.round().astype(np.uint16), window=Window(0, r0, size, len(rows)))
    rasterio.shutil.copy(
        staging, path, driver="COG", compress="DEFLATE", predictor=2, blocksize=512,
        num_threads="ALL_CPUS",
    )  # fmt: skip
    staging.unlink()


def run_agrivision(src: Path, dst: Path, chunk: int, compress: str | None = None) -> dict:
    from agrivision import open_scene
    from agrivision.indices import compute
    from agrivision.io.cog import DEFAULT_COMPRESS, to_cog

    t0 = time.perf_counter()
    scene = open_scene(src, bands=["red", "nir"], scale=1e-4, chunks=chunk)
    to_cog(compute(scene, "NDVI"), dst, compress=compress or DEFAULT_COMPRESS)
    return {"seconds": time.perf_counter() - t0}


def run_baseline(src: Path, dst: Path, chunk: int) -> dict:
    import rasterio

    t0 = time.perf_counter()
    with rasterio.open(src) as s:
        red, nir = s.read(1), s.read(2)
        crs, transform, nodata = s.crs, s.transform, s.nodata
    t_read = time.perf_counter()
    r, n = red.astype(np.float32), nir.astype(np.float32)
    with np.errstate(all="ignore"):
        ndvi = (n - r) / (n + r)
    ndvi[(red == nodata) | (nir == nodata) | ~np.isfinite(ndvi)] = np.nan
    del red, nir, r, n
    t_ndvi = time.perf_counter()
    profile = dict(
        driver="COG", width=ndvi.shape[1], height=ndvi.shape[0], count=1, dtype="float32",
        crs=crs, transform=transform, nodata=np.nan, **COG_OPTIONS,
    )  # fmt: skip
    with rasterio.open(dst, "w", **profile) as d:
        d.write(ndvi, 1)
        d.set_band_description(1, "NDVI")
    t_end = time.perf_counter()
    return {
        "seconds": t_end - t0,
        "phases": {"read": t_read - t0, "ndvi": t_ndvi - t_read, "write": t_end - t_ndvi},
    }


def run_phase(phase: str, src: Path, dst: Path, chunk: int) -> dict:
    """One phase alone (for --breakdown); GDAL settings come from the environment."""
    import rasterio

    with rasterio.open(src) as s:
        shape, crs, transform = s.shape, s.crs, s.transform
        if phase != "decode":  # inputs of the later phases, outside the clock
            red, nir = s.read(1).astype(np.float32), s.read(2).astype(np.float32)
    t0 = time.perf_counter()
    if phase == "decode":
        with rasterio.open(src) as s:
            s.read(1), s.read(2)
    elif phase == "ndvi":
        with np.errstate(all="ignore"):
            ndvi = (nir - red) / (nir + red)
        ndvi[~np.isfinite(ndvi)] = np.nan
    elif phase == "encode":  # the output's size goes into the result (codec comparison)
        with np.errstate(all="ignore"):
            ndvi = (nir - red) / (nir + red)
        t0 = time.perf_counter()
        opts = {**COG_OPTIONS, "num_threads": os.environ.get("BENCH_COG_THREADS", "ALL_CPUS")}
        opts["compress"] = os.environ.get("BENCH_COG_COMPRESS", opts["compress"])
        if "BENCH_COG_LEVEL" in os.environ:
            opts["level"] = int(os.environ["BENCH_COG_LEVEL"])
        with rasterio.open(
            dst, "w", driver="COG", width=shape[1], height=shape[0], count=1,
            dtype="float32", crs=crs, transform=transform, nodata=np.nan, **opts,
        ) as d:  # fmt: skip
            d.write(ndvi, 1)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "mb": dst.stat().st_size / 1e6 if phase == "encode" else None}


CONTENDERS = {
    "agrivision": run_agrivision,
    "agrivision-deflate": lambda *args: run_agrivision(*args, compress="deflate"),
    "baseline": run_baseline,
}


def worker(contender: str, src: Path, dst: Path, result: Path, chunk: int) -> None:
    if contender in CONTENDERS:
        out = CONTENDERS[contender](src, dst, chunk)
    else:
        out = run_phase(contender, src, dst, chunk)
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result.write_text(json.dumps(out))


def run_contender(
    contender: str, src: Path, dst: Path, chunk: int, env: dict[str, str] | None = None
) -> dict:
    """Run one contender in a fresh subprocess; peak RSS of its process tree."""
    result = OUT / f"indices_result_{contender}.json"
    cmd = [sys.executable, __file__, "--chunk", str(chunk), "--worker", contender]
    polled = run_measured([*cmd, str(src), str(dst), str(result)], env)
    out = json.loads(result.read_text())
    out["peak"] = max(out["peak"], polled)
    return out


def compare(a: Path, b: Path) -> tuple[float, int]:
    """Largest absolute difference and NaN-mask mismatches, block by block."""
    import rasterio

    worst, mismatched = 0.0, 0
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        for _, window in sa.block_windows(1):
            x, y = sa.read(1, window=window), sb.read(1, window=window)
            mismatched += int((np.isnan(x) != np.isnan(y)).sum())
            both = ~np.isnan(x) & ~np.isnan(y)
            if both.any():
                worst = max(worst, float(np.abs(x[both] - y[both]).max()))
    return worst, mismatched


def breakdown(src: Path, chunk: int, repeats: int) -> list[str]:
    """Phases alone and the pipelines under GDAL settings."""
    scratch = OUT / "indices_phase.tif"
    cases = [
        ("decode", "decode", {"GDAL_NUM_THREADS": "1"}),
        ("decode", "decode", {"GDAL_NUM_THREADS": "ALL_CPUS"}),
        ("ndvi (numpy)", "ndvi", {}),
        ("encode COG", "encode", {"BENCH_COG_THREADS": "1"}),
        ("encode COG", "encode", {"BENCH_COG_THREADS": "ALL_CPUS"}),
        ("encode COG", "encode", {"BENCH_COG_LEVEL": "1"}),
        ("encode COG", "encode", {"BENCH_COG_COMPRESS": "ZSTD"}),
        ("encode COG", "encode", {"BENCH_COG_COMPRESS": "ZSTD", "BENCH_COG_LEVEL": "1"}),
        ("agrivision", "agrivision", {"GDAL_NUM_THREADS": "ALL_CPUS"}),
        ("agrivision", "agrivision", {"GDAL_CACHEMAX": "256"}),
        ("baseline", "baseline", {"GDAL_NUM_THREADS": "ALL_CPUS"}),
    ]
    lines = [
        "",
        "| phase / pipeline | setting | time (s) | peak RSS (MB) | file (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    for label, contender, env in cases:
        runs = [run_contender(contender, src, scratch, chunk, env) for _ in range(repeats)]
        secs = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak"] for r in runs) / 2**20
        setting = ", ".join(
            f"{k.replace('BENCH_COG_THREADS', 'NUM_THREADS').removeprefix('BENCH_COG_')}={v}"
            for k, v in env.items()
        )
        size = f"{runs[0]['mb']:,.0f}" if runs[0].get("mb") else ""
        lines.append(f"| {label} | {setting or 'default'} | {secs:.2f} | {peak:,.0f} | {size} |")
    scratch.unlink(missing_ok=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2048 x 2048 instead of 10980")
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per contender")
    parser.add_argument("--chunk", type=int, default=1024, help="agrivision's dask chunk edge")
    parser.add_argument("--breakdown", action="store_true", help="also time phases/settings")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, src, dst, result = args.worker
        worker(contender, Path(src), Path(dst), Path(result), args.chunk)
        return

    OUT.mkdir(exist_ok=True)
    size = 2048 if args.quick else 10980
    src = OUT / f"indices_red_nir_{size}.tif"
    t = time.perf_counter()
    make_input(src, size)
    print(f"input {src.name} ready ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    outputs = {c: OUT / f"indices_ndvi_{c}_{size}.tif" for c in CONTENDERS}
    run_contender("agrivision", src, outputs["agrivision"], args.chunk)  # warm the page cache

    runs: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
    for _ in range(args.repeats):
        for c in CONTENDERS:  # interleaved, so that machine load hits both alike
            runs[c].append(run_contender(c, src, outputs[c], args.chunk))
    diff, nan_mismatch = compare(outputs["agrivision"], outputs["baseline"])
    mpx = size * size / 1e6
    base = statistics.median(r["seconds"] for r in runs["baseline"])
    phases = {
        k: statistics.median(r["phases"][k] for r in runs["baseline"])
        for k in ("read", "ndvi", "write")
    }
    lines = [
        f"NDVI of a {size} x {size} red/nir uint16 DEFLATE COG -> float32 COG; "
        f"agrivision chunks {args.chunk}; {os.cpu_count()} CPUs; median of "
        f"{args.repeats} fresh runs; outputs differ by at most {diff:.1e} "
        f"({nan_mismatch} NaN mismatches)",
        "",
        "| contender | time (s) | Mpx/s | time vs baseline | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in CONTENDERS:
        secs = statistics.median(r["seconds"] for r in runs[c])
        peak = max(r["peak"] for r in runs[c]) / 2**20
        lines.append(f"| {c} | {secs:.2f} | {mpx / secs:,.1f} | {secs / base:.2f}x | {peak:,.0f} |")
    lines += [
        "",
        "Baseline phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()),
    ]
    if args.breakdown:
        lines += breakdown(src, args.chunk, repeats=1)
    table = "\n".join(lines)
    print(table)
    (OUT / f"indices_{'quick' if args.quick else 'full'}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()

"""Full Sentinel-2 tile: ``agrivision report`` end to end, local threads vs a 2-worker cluster.

Usage: ``python benchmarks/full_tile.py [--quick] [--size N] [--fields N] [--dates N]
[--workers N] [--repeats N]``

Makes (once, cached in ``bench-output/full_tile/``) a synthetic 10980 x 10980 scene at 10 m:
four uint16 Sentinel-2 L2A-like COGs per date (B02, B03, B04, B08, DN = 10000 * reflectance +
1000) rendered by :func:`agrivision.synthetic.synthetic_scene`, and about 20,000 fields
(GeoPackage). Then runs ``agrivision report`` on it in a fresh process per contender:

- ``local``: dask's threaded scheduler (the default);
- ``cluster``: ``--workers 2``, a ``LocalCluster`` of two single-threaded worker processes.

Anchor: the straightforward NDVI of the tile (rasterio reads red and nir whole, numpy, a
DEFLATE / predictor 3 COG, as in ``benchmarks/indices.py``), run in the same interleaved loop.
Reported per contender: wall time (median of ``--repeats``), ratio to ``local`` and to the
anchor (``x NDVI``), peak RSS of the whole process tree (the CLI plus any worker processes;
psutil polling every 0.2 s) and the time of each report stage from ``summary.json``. Stages
are lazy: the imagery is read once, by ``indices`` (the index COG), ``classes`` and
``write rasters`` (the class COG) read the indices back, and so do the later stages; ``open``
only reads headers.
``--quick``: a 2048 x 2048 scene with fields at the same density (~700).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

OUT = Path(__file__).resolve().parents[1] / "bench-output" / "full_tile"
TILE = 10980
FIELDS = 20_000
BANDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
DATES = ("2024-05-16", "2024-06-05", "2024-06-25", "2024-07-15")
# Four 10 m bands: NDRE (the default's second index) needs a red-edge band, GNDVI does not.
# Zones with the default settings (contiguous, n auto, 0.25 ha and 5 % of the field minimum).
CONFIG = "indices: [NDVI, GNDVI]\nscene:\n  chunks: 1024\n"
STAGES = ("open", "indices", "classes", "write rasters", "zonal", "problems", "zones",
          "write vectors", "html")  # fmt: skip


def make_scene(folder: Path, size: int, n_fields: int, n_dates: int, seed: int = 0) -> dict:
    """Write the synthetic scene (once); return what was made and how long it took."""
    stamp = folder / "scene.json"
    if stamp.exists():
        return json.loads(stamp.read_text())
    import pyogrio

    from agrivision.io.cog import to_cogs
    from agrivision.synthetic import synthetic_scene

    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    dates = list(DATES[:n_dates]) if n_dates > 1 else None
    area_ha = (size * 10) ** 2 / 1e4
    mean_ha = 0.86 * area_ha / n_fields  # synthetic crop fields cover ~86% of the land
    for _ in range(3):  # the layout decides the count; rescale the field size until close
        scene, truth = synthetic_scene(
            seed, shape=(size, size), dates=dates, sensor="generic-rgbn", clouds=False,
            chunks=1024, mean_field_ha=mean_ha,
        )  # fmt: skip
        count = len(truth.fields)
        if abs(count - n_fields) <= 0.05 * n_fields:
            break
        mean_ha *= count / n_fields
    fields = truth.fields[["field_id", "geometry"]]
    pyogrio.write_dataframe(fields, folder / "fields.gpkg", layer="fields")
    jobs = []
    stamps = [str(d)[:10] for d in scene["time"].values] if dates else ["2024-06-15"]
    for t, day in enumerate(stamps):
        tags = {"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "05.10",
                "DATETIME": f"{day}T10:30:00Z"}  # fmt: skip
        for name, band in BANDS.items():
            refl = scene[name].isel(time=t) if dates else scene[name]
            dn = ((refl * 10000).round() + 1000).where(refl.notnull(), 0)
            dn = dn.clip(0, 65535).astype(np.uint16).rio.write_crs(scene.rio.crs)
            path = folder / f"T33UUU_{day.replace('-', '')}_{band}.tif"
            jobs.append((dn, path, {"descriptions": [band], "tags": tags, "nodata": 0}))
    to_cogs(jobs)
    facts = {
        "size": size, "dates": len(stamps), "fields": len(fields),
        "mean_field_ha": round(float(mean_ha), 1), "seconds": round(time.perf_counter() - start),
        "sources": [str(job[1]) for job in jobs], "fields_path": str(folder / "fields.gpkg"),
    }  # fmt: skip
    stamp.write_text(json.dumps(facts, indent=1))
    return facts


def run_report(facts: dict, folder: Path, name: str, extra: list[str]) -> dict:
    """One ``agrivision report`` in a fresh process: wall time, tree peak RSS (overall and
    per stage, from the run's ``stage NAME ...`` log lines) and stage times."""
    config = folder / "config.yaml"
    config.write_text(CONFIG)
    out = folder / f"report-{name}"
    argv = [sys.executable, "-m", "agrivision", "report", *facts["sources"], "--fields",
            facts["fields_path"], "-o", str(out), "--config", str(config), "--overwrite",
            "--log-level", "info", *extra]  # fmt: skip
    stage = ["start"]
    peaks: dict[str, int] = {}
    tail: list[str] = []
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher = threading.Thread(target=_watch_tree, args=(proc, stage, peaks), daemon=True)
    watcher.start()
    for line in proc.stderr:  # type: ignore[union-attr]
        if "% Completed" not in line:  # dask's progress bar would hide the error
            tail = [*tail[-40:], line]
        found = re.search(r"stage (.+?) \.\.\.", line)
        if found:
            stage[0] = found.group(1)
    proc.wait()
    wall = time.perf_counter() - start
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"{name} failed (exit status {proc.returncode}):\n{''.join(tail)}")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall": wall, "rss": max(peaks.values()), "stage_rss": peaks,
            "stages": summary["timings_s"],
            "counts": {k: summary[k] for k in ("fields", "problem_polygons", "zones")}}  # fmt: skip


def straightforward_ndvi(facts: dict, folder: Path) -> float:
    """Wall time of the straightforward NDVI of the scene's last date in a fresh process:
    rasterio reads red and nir whole, numpy computes NDVI (offset removed, nodata -> NaN),
    rasterio writes a DEFLATE / predictor 3 COG (``benchmarks/indices.py``'s baseline)."""
    red, nir = (next(s for s in reversed(facts["sources"]) if s.endswith(f"_{band}.tif"))
                for band in (BANDS["red"], BANDS["nir"]))  # fmt: skip
    argv = [sys.executable, __file__, "--ndvi-worker", red, nir, str(folder / "ndvi.tif")]
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def _ndvi_worker(red_path: str, nir_path: str, out: str) -> None:
    import rasterio
    from indices import COG_OPTIONS

    start = time.perf_counter()
    with rasterio.open(red_path) as r, rasterio.open(nir_path) as n:
        red, nir, crs, transform = r.read(1), n.read(1), r.crs, r.transform
    nodata = (red == 0) | (nir == 0)
    r, n = red.astype(np.float32) - 1000, nir.astype(np.float32) - 1000
    del red, nir
    with np.errstate(all="ignore"):
        ndvi = (n - r) / (n + r)
    ndvi[nodata | ~np.isfinite(ndvi)] = np.nan
    del r, n, nodata
    profile = dict(driver="COG", width=ndvi.shape[1], height=ndvi.shape[0], count=1,
                   dtype="float32", crs=crs, transform=transform, nodata=np.nan, **COG_OPTIONS)  # fmt: skip
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(ndvi, 1)
    print(time.perf_counter() - start)


def _watch_tree(proc: subprocess.Popen, stage: list[str], peaks: dict[str, int]) -> None:
    """Peak of the summed RSS of ``proc`` and all its descendants (LocalCluster workers),
    kept per stage of the run."""
    try:
        root = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        return
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            break
        peaks[stage[0]] = max(peaks.get(stage[0], 0), total)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2048 x 2048, ~700 fields")
    parser.add_argument("--size", type=int, help=f"scene edge in pixels (default {TILE})")
    parser.add_argument("--fields", type=int, help="fields (default: 20,000 per full tile)")
    parser.add_argument("--dates", type=int, default=1, choices=range(1, len(DATES) + 1))
    parser.add_argument("--workers", type=int, default=2, help="cluster worker processes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", choices=("local", "cluster"), help="run one contender")
    parser.add_argument("--ndvi-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ndvi_worker:
        _ndvi_worker(*args.ndvi_worker)
        return
    size = args.size or (2048 if args.quick else TILE)
    n_fields = args.fields or max(50, round(FIELDS * (size / TILE) ** 2))
    folder = OUT / f"{size}px-{n_fields}f-{args.dates}d"
    facts = make_scene(folder, size, n_fields, args.dates)
    contenders = {
        "local": [],
        f"cluster ({args.workers} workers)": ["--workers", str(args.workers)],
    }
    if args.only:
        contenders = {k: v for k, v in contenders.items() if k.startswith(args.only)}
    results = {}
    ndvi = []
    for _ in range(args.repeats):  # interleaved, so that machine load hits all alike
        ndvi.append(straightforward_ndvi(facts, folder))
        for name, extra in contenders.items():
            results.setdefault(name, []).append(run_report(facts, folder, name.split()[0], extra))

    print(f"\n{size} x {size} px ({size * size / 1e6:.0f} Mpx, {len(BANDS)} bands x "
          f"{facts['dates']} date(s)), {facts['fields']} fields (~{facts['mean_field_ha']} ha), "
          f"scene written in {facts['seconds']} s; {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB; repeats: {args.repeats}\n")  # fmt: skip
    base = statistics.median(r["wall"] for r in next(iter(results.values())))
    anchor = statistics.median(ndvi)
    print(f"straightforward NDVI of the tile (rasterio + numpy, DEFLATE COG): {anchor:.1f} s\n")
    print("| contender | wall s | ratio | x NDVI | peak RSS (tree) | " + " | ".join(STAGES) + " |")
    print("|---" * (5 + len(STAGES)) + "|")
    for name, runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        rss = max(r["rss"] for r in runs)
        stages = [statistics.median(r["stages"].get(s, 0.0) for r in runs) for s in STAGES]
        print(f"| {name} | {wall:.1f} | {wall / base:.2f} | {wall / anchor:.1f} | "
              f"{rss / 2**30:.2f} GiB | " + " | ".join(f"{s:.1f}" for s in stages) + " |")  # fmt: skip
    print("\npeak RSS (GiB, whole process tree) while each stage ran:\n")
    print("| contender | " + " | ".join(STAGES) + " |")
    print("|---" * (1 + len(STAGES)) + "|")
    for name, runs in results.items():
        peaks = [max(r["stage_rss"].get(s, 0) for r in runs) / 2**30 for s in STAGES]
        print(f"| {name} | " + " | ".join(f"{p:.2f}" for p in peaks) + " |")
    counts = next(iter(results.values()))[0]["counts"]
    print(f"\noutputs: {counts['fields']} fields, {counts['problem_polygons']} problem polygons, "
          f"{counts['zones']} zone polygons")  # fmt: skip


if __name__ == "__main__":
    main()

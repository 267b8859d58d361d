"""Writing problem polygons: agrivision's writers vs GDAL's (pyogrio) from the whole table.

Usage: ``python benchmarks/vector_write.py [--quick] [--repeats N] [--polygons N]``

Makes (once, seeded) a GeoParquet of ``--polygons`` (default 300,000) small star-shaped
polygons of 17 vertices over a Sentinel-2 tile in UTM 33N, with the problem layer's columns
(``field_id`` text, ``class_name`` text, ``class`` int, ``area_ha`` float), in
``bench-output/``. Contenders, each in a fresh subprocess per repeat (the table is read before
the clock starts), write the same two files, an RFC 7946 GeoJSON (7 decimals) and a one-layer
GeoPackage:

- ``agrivision``: the report's path: the table spooled in batches of 50,000
  (:class:`~agrivision.io.vector.FeatureSpool`), then ``write_vector(spool, .geojson)`` and
  ``write_layers({"problems": spool}, .gpkg)``;
- ``pyogrio``: the usual recipe: ``pyogrio.write_dataframe`` of the whole GeoDataFrame,
  GeoJSON with ``RFC7946=YES`` and ``COORDINATE_PRECISION=7``, then GPKG.

Reported: wall and CPU time (median of repeats), ratio, peak RSS, and the largest coordinate
difference between the two GeoJSON files (Hausdorff distance; both are rounded to 1e-7 degrees).
``--quick``: 30,000 polygons.
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
CONTENDERS = ("pyogrio", "agrivision")
BATCH = 50_000


def make_table(path: Path, n: int, seed: int = 0) -> None:
    import geopandas as gpd
    import shapely

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(300000, 409800, n), rng.uniform(5790000, 5899800, n)
    angles = np.sort(rng.uniform(0, 2 * np.pi, (n, 16)), axis=1)
    radii = rng.uniform(10, 60, (n, 16))
    ring = np.stack(
        [cx[:, None] + radii * np.cos(angles), cy[:, None] + radii * np.sin(angles)], -1
    )
    polygons = shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
    codes = rng.integers(2, 5, n)
    names = np.array(["", "", "stressed", "anomaly – scout here", "bare soil"])[codes]
    table = gpd.GeoDataFrame(
        {"field_id": [f"F{i:05d}" for i in rng.integers(0, 20000, n)], "class": codes,
         "class_name": names, "area_ha": shapely.area(polygons) / 1e4},
        geometry=polygons, crs="EPSG:32633",
    )  # fmt: skip
    table.to_parquet(path)


def worker(contender: str, src: Path, folder: Path, result: Path) -> None:
    import geopandas as gpd

    table = gpd.read_parquet(src)
    cpu0, t0 = time.process_time(), time.perf_counter()
    if contender == "agrivision":
        from agrivision.io.vector import FeatureSpool, write_layers, write_vector

        batches = (table.iloc[i : i + BATCH] for i in range(0, len(table), BATCH))
        with FeatureSpool(batches, folder=folder) as spool:
            write_vector(spool, folder / "problems.geojson", precision=7)
            write_layers({"problems": spool}, folder / "report.gpkg")
    else:
        import pyogrio

        options = {"RFC7946": "YES", "COORDINATE_PRECISION": "7"}
        pyogrio.write_dataframe(
            table, folder / "problems.geojson", driver="GeoJSON", layer_options=options
        )
        pyogrio.write_dataframe(table, folder / "report.gpkg", layer="problems", driver="GPKG")
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result.write_text(json.dumps({"seconds": seconds, "cpu": cpu, "peak": peak}))


def largest_difference(a: Path, b: Path) -> tuple[float, int]:
    """Largest Hausdorff distance (degrees) between the features of two GeoJSON files (ring
    orientation and start do not count), and the feature count."""
    import pyogrio
    import shapely

    one, two = pyogrio.read_dataframe(a), pyogrio.read_dataframe(b)
    return float(shapely.hausdorff_distance(one.geometry.values, two.geometry.values).max()), len(
        one
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30,000 polygons")
    parser.add_argument("--polygons", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, src, folder, result = args.worker
        worker(contender, Path(src), Path(folder), Path(result))
        return
    n = 30_000 if args.quick else args.polygons
    OUT.mkdir(exist_ok=True)
    src = OUT / f"vector_write_{n}.parquet"
    make_table(src, n)
    runs: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
    for _ in range(args.repeats):
        for c in CONTENDERS:  # interleaved, so that machine load hits both alike
            folder = OUT / f"vector_write_{c}"
            folder.mkdir(exist_ok=True)
            result = folder / "result.json"
            polled = run_measured([sys.executable, __file__, "--worker", c, str(src), str(folder),
                                   str(result)])  # fmt: skip
            out = json.loads(result.read_text())
            runs[c].append({**out, "peak": max(out["peak"], polled)})
    diff, count = largest_difference(
        *(OUT / f"vector_write_{c}" / "problems.geojson" for c in CONTENDERS)
    )
    base = statistics.median(r["seconds"] for r in runs["pyogrio"])
    print(f"{count:,} polygons (17 vertices) -> RFC 7946 GeoJSON + GeoPackage; "
          f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end); median of "
          f"{args.repeats} fresh runs; GeoJSON geometries differ by at most {diff:.1e} degrees (Hausdorff)\n")  # fmt: skip
    print("| contender | time (s) | CPU (s) | time vs pyogrio | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for c in CONTENDERS:
        secs = statistics.median(r["seconds"] for r in runs[c])
        cpu = statistics.median(r["cpu"] for r in runs[c])
        peak = max(r["peak"] for r in runs[c]) / 2**20
        print(f"| {c} | {secs:.2f} | {cpu:.2f} | {secs / base:.2f}x | {peak:,.0f} |")


if __name__ == "__main__":
    main()

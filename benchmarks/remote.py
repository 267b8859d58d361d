"""Report over remote imagery: reading the fields' windows vs downloading whole files.

Usage: ``python benchmarks/remote.py [--quick] [--size N]``

A synthetic Sentinel-2 L2A tile (red, nir at 10 m, SCL at 20 m; 512-pixel COG blocks) is
served on 127.0.0.1 by the test servers (``tests/stac_servers.py``: a rustac STAC API and a
range-request file server that counts bytes); the fields are the parcels in a 2.6 km square
in the tile's corner. Both contenders run ``agrivision report`` in a fresh process (peak RSS
of the process):

* ``download``: the anchor, as without ``agrivision search``: every file of the item fetched
  whole over HTTP, then a report on the local copy (the whole tile);
* ``windows``: ``agrivision search`` then ``agrivision report items.json``: only the blocks
  under the fields are fetched (HTTP range requests).

Reported: MB served by the file server, requests, wall time (download or search included)
and of the report command alone, peak RSS of the report, and ratios to the anchor. ``--quick``: 2048 x 2048; default 4096 x 4096.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
from harness import run_measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from stac_servers import file_server, stac_api  # noqa: E402

OUT = ROOT / "bench-output" / "remote"
AGRIVISION = [sys.executable, "-m", "agrivision"]


def _collection(size: int) -> tuple[Path, Path, dict]:
    from agrivision.synthetic import write_synthetic

    folder = OUT / str(size)
    if not (folder / "items.json").exists():
        write_synthetic(folder, seed=5, shape=(size, size), dates=["2024-06-01"],
                        bands=["B04", "B08"], clouds=False, chunks=512)  # fmt: skip
    fields = gpd.read_file(folder / "fields.geojson").to_crs(32633)
    b = fields.geometry.bounds
    corner = (b.minx > 500200) & (b.maxx < 502800) & (b.maxy < 5799800) & (b.miny > 5797200)
    path = folder / "corner_fields.geojson"
    fields[corner].to_crs(4326).to_file(path, driver="GeoJSON")
    item = json.loads((folder / "items.json").read_text())["features"][0]
    item["collection"] = "sentinel-2-l2a"
    item["properties"]["eo:cloud_cover"] = 10.0
    return folder, path, item


def _row(name: str, counter, seconds: float, report_s: float, rss: int) -> dict:
    return {"name": name, "MB": sum(counter.bytes.values()) / 1e6, "s": seconds,
            "requests": sum(counter.requests.values()), "report": report_s,
            "rss": rss / 1e6}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    size = args.size or (2048 if args.quick else 4096)
    folder, fields, item = _collection(size)
    rows = []
    with file_server(folder) as (base, counter):
        for asset in item["assets"].values():
            asset["href"] = f"{base}/{asset['href'][2:]}"
        with stac_api([item], OUT) as url:
            # anchor: fetch every file whole, then report on the local tile
            local = OUT / "download"
            shutil.rmtree(local, ignore_errors=True)
            local.mkdir(parents=True)
            counter.reset()
            start = time.perf_counter()
            for asset in item["assets"].values():
                name = asset["href"].rsplit("/", 1)[1]
                with urllib.request.urlopen(asset["href"]) as answer:
                    (local / name).write_bytes(answer.read())
            shutil.copy(folder / "items.json", local / "items.json")
            started = time.perf_counter()
            rss = run_measured([*AGRIVISION, "report", str(local / "items.json"), "--fields",
                                str(fields), "-o", str(local / "report"), "--quiet"])  # fmt: skip
            end = time.perf_counter()
            rows.append(_row("download", counter, end - start, end - started, rss))
            # agrivision: search, then the fields' windows
            found, report = OUT / "items.json", OUT / "windows"
            shutil.rmtree(report, ignore_errors=True)
            counter.reset()
            start = time.perf_counter()
            run_measured([*AGRIVISION, "search", "--stac", url, "--collection", "sentinel-2-l2a",
                          "--fields", str(fields), "--datetime", "2024-01-01/2024-12-31", "-o",
                          str(found), "--overwrite", "--quiet"])  # fmt: skip
            started = time.perf_counter()
            rss = run_measured([*AGRIVISION, "report", str(found), "--fields", str(fields),
                                "-o", str(report), "--quiet"])  # fmt: skip
            end = time.perf_counter()
            rows.append(_row("windows", counter, end - start, end - started, rss))
    anchor = rows[0]
    print(f"\nreport over a remote {size} x {size} tile, fields in a 2.6 km corner")
    print(f"{'contender':<10} {'MB served':>10} {'requests':>9} {'total s':>8} {'report s':>9} "
          f"{'peak MB':>8} {'bytes x':>8} {'report x':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['name']:<10} {r['MB']:>10.2f} {r['requests']:>9} {r['s']:>8.2f} "
              f"{r['report']:>9.2f} {r['rss']:>8.0f} {r['MB'] / anchor['MB']:>8.3f} "
              f"{r['report'] / anchor['report']:>9.2f}")  # fmt: skip
    print(
        "total s: download or search included, each command a fresh process (imports "
        "included); loopback, so the download costs nothing here"
    )


if __name__ == "__main__":
    main()

"""Size and load time of report.html in headless Chromium (Debian's, through playwright).

Usage: ``python benchmarks/report_html.py [REPORT.html ...] [--repeats N]``

Without a path it measures the full-tile benchmark's report
(``bench-output/full_tile/10980px-20000f-1d/report-local/report.html``, made by
``python benchmarks/full_tile.py --only local``). For each page: file size, the load event
(``loadEventEnd`` of the navigation: parsing, the inline Leaflet and the map with every field
drawn, since the page's script runs before it), the median of ``--repeats`` fresh loads, the
number of field shapes on the map and the requests that left the page (must be none). The
anchor is the budget: 40 MB and a 3 s load event for a full tile. On a shared machine the
load event stretches with the load average, so the CPU seconds that Chromium's processes
spent until then (user + system, all processes) are printed too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

FULL_TILE = (
    Path(__file__).resolve().parents[1]
    / "bench-output/full_tile/10980px-20000f-1d/report-local/report.html"
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
BUDGET_MB, BUDGET_S = 40.0, 3.0
LOAD_MS = "performance.getEntriesByType('navigation')[0].loadEventEnd"


def measure(html: Path, repeats: int) -> dict:
    """Median load event (s) and Chromium CPU (s) over ``repeats`` fresh pages, the field
    shapes drawn and the requests that left the page."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    loads, cpus, outside, shapes = [], [], [], 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on(
                "request", lambda r: outside.append(r.url) if r.url.startswith("http") else None
            )
            before = _chromium_cpu()
            page.goto(html.as_uri(), wait_until="load", timeout=120_000)
            cpus.append(_spent(before, _chromium_cpu()))
            loads.append(page.evaluate(LOAD_MS) / 1000)
            shapes = page.locator("#map [data-field-id]").count()
            page.close()
        browser.close()
    return {"load": statistics.median(loads), "loads": loads, "cpu": statistics.median(cpus),
            "shapes": shapes, "outside": outside}  # fmt: skip


def _chromium_cpu() -> dict[int, float]:
    """CPU seconds (user + system) so far of each Chromium process under this one."""
    seconds = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if "chrom" in proc.name():
                times = proc.cpu_times()
                seconds[proc.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two :func:`_chromium_cpu` readings by the processes alive
    at the second (one that ended in between is not counted)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, default=[FULL_TILE])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = " ".join(f"{v:.1f}" for v in psutil.getloadavg())
    print(f"\nload average {load} on {psutil.cpu_count()} CPUs\n")
    print(f"| report.html | MB | budget MB | load event s (median of {args.repeats}) | budget s | "
          "ratio to budget | Chromium CPU s | field shapes | outside requests |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for html in args.pages:
        if not html.is_file():
            raise SystemExit(f"{html}: no such report (run benchmarks/full_tile.py --only local)")
        mb = html.stat().st_size / 1e6
        m = measure(html, args.repeats)
        loads = ", ".join(f"{t:.2f}" for t in m["loads"])
        print(f"| {html} | {mb:.1f} | {BUDGET_MB:.0f} | {m['load']:.2f} ({loads}) | "
              f"{BUDGET_S:.0f} | {m['load'] / BUDGET_S:.2f} | {m['cpu']:.2f} | {m['shapes']} | "
              f"{len(m['outside'])} |")  # fmt: skip


if __name__ == "__main__":
    main()

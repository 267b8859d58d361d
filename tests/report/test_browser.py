"""report.html in headless Chromium: no console errors, every image loads, one row per field."""

from __future__ import annotations

import shutil

import pytest

from agrivision.cli import main

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def check_report_in_browser(html, screenshot) -> dict:
    """Open ``html`` offline; return console errors, image status, table rows and sortability."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it when run as root)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                errors.append(f"network: {r.url}")
                if not r.url.startswith(("file:", "data:"))
                else None
            ),
        )
        page.goto(html.as_uri())
        images = page.evaluate(
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        rows = page.locator("#fields tbody tr").count()
        first_before = page.locator("#fields tbody tr").first.inner_text()
        page.locator("#fields th").nth(1).click()  # sort by area
        page.locator("#fields th").nth(1).click()  # descending
        first_after = page.locator("#fields tbody tr").first.inner_text()
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return {"errors": errors, "images": images, "rows": rows,
            "sorted": first_before != first_after}  # fmt: skip


def test_report_html_in_browser(report_inputs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(out), "--quiet"]) == 0  # fmt: skip
    result = check_report_in_browser(out / "report.html", tmp_path / "report.png")
    assert result["errors"] == []
    assert result["images"] and all(result["images"])
    assert result["rows"] == 3
    assert result["sorted"]
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_demo_report_in_browser(tmp_path):
    """What `make demo` runs, at a smaller size: its report.html passes the same check."""
    import geopandas as gpd

    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--size", "256"]) == 0
    fields = gpd.read_file(out / "report" / "fields.geojson")
    result = check_report_in_browser(out / "report" / "report.html", tmp_path / "demo.png")
    assert result["errors"] == []
    assert result["images"] and all(result["images"])
    assert result["rows"] == len(fields) > 3
    assert result["sorted"]

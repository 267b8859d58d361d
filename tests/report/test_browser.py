"""report.html in headless Chromium (Debian's, driven by playwright; nothing is downloaded):
no console error, no network request, the map's field shapes link to the cards and the table
rows to the map.

``AGRIVISION_SCREENSHOTS=1`` (``make screenshots``) writes the README's screenshots
(``docs/report-overview.png``, ``docs/report-card.png``) from the demo report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from agrivision.cli import main
from agrivision.report import webmap
from agrivision.report.palette import INDEX_RANGE, STATUS_COLOURS, ramp_rgb

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
DOCS = Path(__file__).resolve().parents[2] / "docs"
MAP_BOX = "document.querySelector('#map').getBoundingClientRect().toJSON()"


@contextlib.contextmanager
def report_page(html: Path) -> Iterator[tuple[object, list[str]]]:
    """``html`` opened offline in headless Chromium: the page and a list that collects
    console errors, page errors and every request that is not the page itself or a data URI."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it when run as root)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        own = html.as_uri()
        page.on(
            "request",
            lambda r: (
                problems.append(f"network: {r.url[:100]}")
                if not (r.url.startswith("data:") or r.url.split("#")[0] == own)
                else None
            ),
        )
        page.goto(own)
        yield page, problems
        browser.close()


def shape_box(page, field_id: str) -> dict:
    """Screen box of the field's shape on the map."""
    return page.evaluate(
        'id => document.querySelector(`#map [data-field-id="${id}"]`)'
        ".getBoundingClientRect().toJSON()",
        field_id,
    )


def click_field(page, field_id: str) -> str:
    """Click the field's shape; return the address bar's fragment."""
    page.locator(f'#map [data-field-id="{field_id}"]').click(force=True)
    return page.evaluate("location.hash")


def find_on_map(page, field_id: str) -> dict:
    """Click the field's table row; return its shape's box once the map has moved."""
    before = shape_box(page, field_id)
    page.locator(f'#fields tbody tr[data-id="{field_id}"]').click()
    page.wait_for_function(
        '([id, w]) => document.querySelector(`#map [data-field-id="${id}"]`)'
        ".getBoundingClientRect().width > 2 * w",
        arg=[field_id, before["width"]],
        timeout=10_000,
    )
    page.wait_for_timeout(400)  # the end of the zoom animation
    return shape_box(page, field_id)


def inside(box: dict, outer: dict) -> bool:
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return outer["left"] < cx < outer["right"] and outer["top"] < cy < outer["bottom"]


def test_report_html_in_browser(report_inputs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(out), "--quiet"]) == 0  # fmt: skip
    table = gpd.read_file(out / "fields.geojson").set_index("field_id")
    with report_page(out / "report.html") as (page, problems):
        images = page.evaluate(
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        )
        assert images and all(images)  # cards' thumbnails and the map's overlays
        assert page.locator("#fields tbody tr").count() == 3
        # the map: one shape per field (C lies outside the scene but is still drawn)
        ids = page.evaluate(
            "Array.from(document.querySelectorAll('#map [data-field-id]'))"
            ".map(e => e.dataset.fieldId).sort()"
        )
        assert ids == ["A", "B", "C"]
        # sorting: by crop (A wheat, B maize, C beet), then descending
        page.locator("#fields th", has_text="crop").click()
        assert page.locator("#fields tbody tr").first.get_attribute("data-id") == "C"
        page.locator("#fields th", has_text="crop").click()
        assert page.locator("#fields tbody tr").first.get_attribute("data-id") == "A"
        # the status filter keeps the matching rows only
        status_col = page.evaluate(
            "Array.from(document.querySelectorAll('#fields th'))"
            ".findIndex(t => t.textContent === 'status')"
        )
        status_b = page.locator('#fields tbody tr[data-id="B"] td').nth(status_col).inner_text()
        page.select_option("#status-filter", status_b)
        shown = page.evaluate("Array.from(document.querySelectorAll('#fields tbody tr'))"
                              ".map(r => r.dataset.id)")  # fmt: skip
        assert "B" in shown and "C" not in shown  # C: insufficient data (outside the scene)
        page.select_option("#status-filter", "")
        # hovering B shows its id, crop, area, index mean and status
        page.locator('#map [data-field-id="B"]').hover(force=True)
        tip = page.locator(".leaflet-tooltip").inner_text()
        b = table.loc["B"]
        for text in ("field B", "crop: maize", f"area: {b['area_ha']:.2f} ha",
                     f"ndvi_mean: {b['ndvi_mean']:.3f}", f"status: {b['status']}"):  # fmt: skip
            assert text in tip
        # colour by an index mean: the legend and the fills follow the palette's ramp
        fill_a = '#map [data-field-id="A"]'
        assert page.locator(fill_a).get_attribute("fill") == STATUS_COLOURS["problem"]
        page.select_option("#colour-by", "ndvi_mean")
        assert "ndvi_mean" in page.locator(".legend").inner_text()
        lo, hi = INDEX_RANGE
        rgb = ramp_rgb(np.array((table.loc["A", "ndvi_mean"] - lo) / (hi - lo)))
        assert page.locator(fill_a).get_attribute("fill") == f"rgb({','.join(map(str, rgb))})"
        page.select_option("#colour-by", "status")
        # a click on B shows its card
        assert click_field(page, "B") == "#field-B"
        card = page.locator("#field-B")
        assert card.is_visible() and "Field B" in card.inner_text()
        # a click on A's table row brings A into the middle of the map, zoomed in
        box = find_on_map(page, "A")
        assert inside(box, page.evaluate(MAP_BOX)) and box["width"] > 100
        # every overlay can be shown without an error
        for label in ("health classes", "zones", "problem areas"):
            page.locator(".leaflet-control-layers label", has_text=label).click()
        page.wait_for_timeout(300)
    assert problems == []


def test_cards_for_every_field_on_demand(report_inputs, tmp_path, monkeypatch):
    """With one server-rendered card, the other fields' cards are drawn in the page from the
    embedded table, with the same facts and an SVG time series. Zones and problem areas come
    as images here (as on a full tile: a vertex budget of 0)."""
    monkeypatch.setattr(webmap, "MAX_LAYER_VERTICES", 0)
    out = tmp_path / "report"
    config = tmp_path / "config.yaml"
    config.write_text("output:\n  max_cards: 1\n")
    assert main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(out), "--config", str(config), "--quiet"]) == 0  # fmt: skip
    table = gpd.read_file(out / "fields.geojson").set_index("field_id")
    html = (out / "report.html").read_text()
    server = [i for i in "ABC" if f'id="field-{i}"' in html]
    assert len(server) == 1
    other = next(i for i in "AB" if i not in server)
    with report_page(out / "report.html") as (page, problems):
        assert page.locator(f"#field-{other}").count() == 0
        assert click_field(page, other) == f"#field-{other}"
        text = page.locator(f"#card-on-demand #field-{other}").inner_text()
        assert f"area: {table.loc[other, 'area_ha']:.2f} ha" in text
        assert f"NDVI mean: {table.loc[other, 'ndvi_mean']:.3f}" in text
        assert table.loc[other, "status"] in text
        points = page.locator(f"#field-{other} svg.series circle").count()
        assert points == 2  # one per date
        # zones and problem areas as images beside the index
        assert page.locator("#map img.leaflet-image-layer").count() == 1
        for label in ("zones", "problem areas"):
            page.locator(".leaflet-control-layers label", has_text=label).click()
        assert page.locator("#map img.leaflet-image-layer").count() == 3
        # a link to a field opens at its card, with the map on it
        page.goto((out / "report.html").as_uri() + "#field-A")
        page.wait_for_timeout(500)
        assert page.locator("#field-A").is_visible()
        assert inside(shape_box(page, "A"), page.evaluate(MAP_BOX))
    assert problems == []


def test_demo_report_in_browser(tmp_path):
    """What `make demo` runs, at a smaller size: its report.html passes the same checks;
    with AGRIVISION_SCREENSHOTS=1 it makes the README's screenshots."""
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--size", "256"]) == 0
    fields = gpd.read_file(out / "report" / "fields.geojson")
    judged = fields[fields["status"] != "insufficient data"]
    pick = str(judged.sort_values("problem_area_ha")["field_id"].iloc[-1])
    with report_page(out / "report" / "report.html") as (page, problems):
        assert page.locator("#fields tbody tr").count() == len(fields) > 3
        assert page.locator("#map [data-field-id]").count() == len(fields)
        assert click_field(page, pick) == f"#field-{pick}"
        assert page.locator(f"#field-{pick}").is_visible()
        if os.environ.get("AGRIVISION_SCREENSHOTS"):
            page.locator(f"#field-{pick}").screenshot(path=str(DOCS / "report-card.png"))
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(DOCS / "report-overview.png"))
    assert problems == []


@pytest.mark.realdata
def test_slovenia_report_map(shared_data, tmp_path):
    """2015-09-09 over the 88 RABA parcels: every parcel on the map, field 12 links to its
    card, nothing requested from the network, the page within 3 MB."""
    folder = shared_data / "s2_slovenia_eolearn"
    out = tmp_path / "report"
    assert main(["report", str(folder / "s2l1c_toa_13band_2015-09-09.tif"), "--fields",
                 str(folder / "raba_landuse_polygons.geojson"), "-o", str(out), "--quiet"]) == 0  # fmt: skip
    assert (out / "report.html").stat().st_size <= 3_000_000
    with report_page(out / "report.html") as (page, problems):
        assert page.locator("#map [data-field-id]").count() >= 88
        assert click_field(page, "12") == "#field-12"
        assert "Field 12" in page.locator("#field-12").inner_text()
        box = find_on_map(page, "40")
        assert inside(box, page.evaluate(MAP_BOX))
    assert problems == []

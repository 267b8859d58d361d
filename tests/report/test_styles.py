"""QGIS styles of the report: ``layer_styles`` in report.gpkg (QML and SLD) and indices.qml."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pytest

from agrivision.cli import main
from agrivision.report.palette import RAMP, STATUS_COLOURS, zone_colours, zone_shade

SLD = {"se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}


@pytest.fixture(scope="module")
def report_dir(report_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("styles") / "report"
    # three zones per field, kept however small (these synthetic fields are nearly uniform)
    config = tmp_path_factory.mktemp("styles") / "config.yaml"
    config.write_text("zones: {n: 3, min_area_ha: 0, min_share: 0, smooth: 0}\n")
    assert main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(out), "--config", str(config), "--quiet"]) == 0  # fmt: skip
    return out


def _zone_ramp(report_dir) -> dict[str, str]:
    """The zone colours expected, by ``"zone of zones_n"``: the ramp over the zone's rank."""
    zones = gpd.read_file(report_dir / "report.gpkg", layer="zones")
    assert zones.zones_n.max() >= 2, "the test scene should give fields several zones"
    colours = zone_colours()
    return {
        f"{z} of {n}": colours[int(zone_shade(z, n))]
        for z, n in zip(zones.zone, zones.zones_n, strict=True)
    }


def _qml_rules(qml: str) -> dict[str, str]:
    """{filter: '#rrggbb'} of a rule-based QML renderer."""
    renderer = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert renderer is not None and renderer.get("type") == "RuleRenderer"
    colours = {}
    for rule in renderer.iter("rule"):
        colours[rule.get("filter")] = _hex(_symbol_rgba(renderer, rule.get("symbol")))
    return colours


def _symbol_rgba(renderer: ET.Element, name: str) -> str:
    """'r,g,b,a' colour of the renderer's symbol ``name``."""
    symbol = renderer.find(f"symbols/symbol[@name='{name}']")
    return symbol.find("layer/Option/Option[@name='color']").get("value")


def _hex(rgba: str) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgba.split(",")[:3])


def _sld_zone_rules(sld: str) -> dict[str, str]:
    """{'zone z of n': fill colour} of the zones SLD: each rule's (zone, zones_n) pairs."""
    root = ET.fromstring(sld.split("\n", 1)[1])
    out = {}
    for rule in root.iter(f"{{{SLD['se']}}}Rule"):
        fill = rule.find("se:PolygonSymbolizer/se:Fill/se:SvgParameter[@name='fill']", SLD).text
        for both in rule.iter(f"{{{SLD['ogc']}}}And"):
            z, n = (e.text for e in both.iter(f"{{{SLD['ogc']}}}Literal"))
            out[f"{z} of {n}"] = fill
    return out


def _styles(gpkg) -> dict[str, dict]:
    with sqlite3.connect(gpkg) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM layer_styles").fetchall()
        geometry = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        registered = db.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchone()
    assert tuple(registered) == ("attributes",)
    styles = {r["f_table_name"]: dict(r) for r in rows}
    for layer, style in styles.items():
        assert style["f_geometry_column"] == geometry[layer] and style["useAsDefault"] == 1
    return styles


def _qml_categories(qml: str) -> tuple[str, dict[str, str]]:
    """(attribute, {value: '#rrggbb'}) of a categorised QML renderer."""
    renderer = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert renderer is not None and renderer.get("type") == "categorizedSymbol"
    colours = {}
    for category in renderer.iter("category"):
        name = category.get("symbol")
        rgba = _symbol_rgba(renderer, name)
        symbol = renderer.find(f"symbols/symbol[@name='{name}']")
        assert symbol.find("layer/prop[@k='color']").get("v") == rgba  # older QGIS reads props
        colours[category.get("value")] = _hex(rgba)
    return renderer.get("attr"), colours


def _sld_rules(sld: str) -> dict[str, str]:
    """{literal: fill colour} of the SLD's rules."""
    root = ET.fromstring(sld.split("\n", 1)[1])
    rules = {}
    for rule in root.iter(f"{{{SLD['se']}}}Rule"):
        literal = rule.find("ogc:Filter/ogc:PropertyIsEqualTo/ogc:Literal", SLD).text
        fill = rule.find("se:PolygonSymbolizer/se:Fill/se:SvgParameter[@name='fill']", SLD)
        rules[literal] = fill.text
    return rules


def test_gpkg_carries_status_zone_and_problem_styles(report_dir):
    styles = _styles(report_dir / "report.gpkg")
    assert set(styles) == {"fields", "zones", "problems"}
    attr, colours = _qml_categories(styles["fields"]["styleQML"])
    assert attr == "status" and colours == STATUS_COLOURS
    assert _sld_rules(styles["fields"]["styleSLD"]) == STATUS_COLOURS
    # zones: the red-to-green ramp over each zone's rank in its field: zone 1 of any field
    # red, its last zone green (zone 2 of 2 as green as 3 of 3), a single zone yellow
    expected = _zone_ramp(report_dir)
    rules = _qml_rules(styles["zones"]["styleQML"])
    by_pair = {}
    for condition, colour in rules.items():
        for z, n in re.findall(r'"zone" = (\d+) AND "zones_n" = (\d+)', condition):
            by_pair[f"{z} of {n}"] = colour
    assert by_pair == expected
    n = max(int(p.split(" of ")[1]) for p in expected)
    assert expected[f"1 of {n}"] == RAMP[0] and expected[f"{n} of {n}"] == RAMP[-1]
    assert expected.get("1 of 1", RAMP[2]) == RAMP[2]  # a single zone: the neutral middle
    assert _sld_zone_rules(styles["zones"]["styleSLD"]) == expected
    # problems: the class schema's colours, keyed by the labels the layer holds
    attr, colours = _qml_categories(styles["problems"]["styleQML"])
    assert attr == "class_name"
    assert colours == {"stressed": "#fdae61", "anomaly – scout here": "#d7191c"}
    names = gpd.read_file(report_dir / "report.gpkg", layer="problems")["class_name"]
    assert len(names) and set(names) <= set(colours)


def test_index_raster_has_a_colour_ramp_sidecar(report_dir):
    root = ET.fromstring((report_dir / "indices.qml").read_text().split("\n", 1)[1])
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "1"
    items = renderer.findall("rastershader/colorrampshader/item")
    assert [i.get("color") for i in items] == list(RAMP)
    assert [float(i.get("value")) for i in items] == pytest.approx([-0.2, 0.1, 0.4, 0.7, 1.0])


# Run by the Python that has QGIS (Debian's python3-qgis lives in the system Python, not in
# a virtual environment): each feature's symbol colour, and the raster's renderer and ramp.
QGIS_CHECK = """
import json, os, sys
from qgis.core import QgsApplication, QgsRasterLayer, QgsRenderContext, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
gpkg, tif = sys.argv[1:3]
out = {}
for name, attr in (("fields", "status"), ("zones", "zone"), ("problems", "class_name")):
    layer = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
    renderer, context = layer.renderer().clone(), QgsRenderContext()
    renderer.startRender(context, layer.fields())
    key = (lambda f: f"{f['zone']} of {f['zones_n']}") if name == "zones" else (lambda f: str(f[attr]))
    out[name] = {key(f): renderer.symbolsForFeature(f, context)[0].color().name()
                 for f in layer.getFeatures()}
    renderer.stopRender(context)
raster = QgsRasterLayer(tif, "indices")
ramp = raster.renderer().shader().rasterShaderFunction().colorRampItemList()
out["indices"] = [raster.renderer().type(), [[i.value, i.color.name()] for i in ramp]]
print(json.dumps(out), flush=True)
os._exit(0)  # QGIS 3.22 can crash while tearing down a standalone application
"""


def _python_with_qgis() -> str | None:
    for python in (sys.executable, "/usr/bin/python3"):
        found = subprocess.run([python, "-c", "import qgis.core"], capture_output=True)
        if Path(python).exists() and found.returncode == 0:
            return python
    return None


def test_qgis_applies_the_styles(report_dir):
    """With QGIS installed (Debian's python3-qgis), every feature is drawn in its colour."""
    python = _python_with_qgis()
    if python is None:
        pytest.skip("QGIS is not installed (Debian: apt-get install python3-qgis)")
    done = subprocess.run(
        [python, "-c", QGIS_CHECK, str(report_dir / "report.gpkg"), str(report_dir / "indices.tif")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    drawn = json.loads(done.stdout.strip().splitlines()[-1])
    table = gpd.read_file(report_dir / "report.gpkg", layer="fields")
    assert drawn["fields"] == {s: STATUS_COLOURS[s] for s in table["status"]}
    assert drawn["zones"] == _zone_ramp(report_dir) and drawn["zones"]
    assert drawn["problems"]["stressed"] == "#fdae61"
    kind, stops = drawn["indices"]
    assert kind == "singlebandpseudocolor" and [c for _, c in stops] == list(RAMP)

"""QGIS styles of the report: ``layer_styles`` in report.gpkg (QML and SLD) and indices.qml."""

from __future__ import annotations

import os
import sqlite3
import xml.etree.ElementTree as ET

import geopandas as gpd
import pytest

from agrivision.cli import main
from agrivision.report.palette import RAMP, STATUS_COLOURS

SLD = {"se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}


@pytest.fixture(scope="module")
def report_dir(report_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("styles") / "report"
    assert main(["report", *report_inputs["sources"], "--fields", str(report_inputs["fields"]),
                 "-o", str(out), "--quiet"]) == 0  # fmt: skip
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
        symbol = renderer.find(f"symbols/symbol[@name='{category.get('symbol')}']")
        rgba = symbol.find("layer/Option/Option[@name='color']").get("value")
        assert symbol.find("layer/prop[@k='color']").get("v") == rgba  # older QGIS reads props
        colours[category.get("value")] = "#" + "".join(
            f"{int(v):02x}" for v in rgba.split(",")[:3]
        )
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
    # zones: the red-to-green ramp over the default three zones, 1 = lowest index = red
    attr, colours = _qml_categories(styles["zones"]["styleQML"])
    assert attr == "zone" and colours == {"1": RAMP[0], "2": RAMP[2], "3": RAMP[-1]}
    assert _sld_rules(styles["zones"]["styleSLD"]) == colours
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


def test_qgis_applies_the_styles(report_dir):
    """With QGIS installed (Debian's python3-qgis), the layers open with the report's colours."""
    core = pytest.importorskip("qgis.core", reason="QGIS (python3-qgis) is not installed")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = core.QgsApplication([], False)
    app.initQgis()
    try:
        fields = core.QgsVectorLayer(f"{report_dir / 'report.gpkg'}|layername=fields", "f", "ogr")
        assert fields.isValid()
        renderer = fields.renderer()
        assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "status"
        colours = {c.value(): c.symbol().color().name() for c in renderer.categories()}
        assert colours == STATUS_COLOURS
        raster = core.QgsRasterLayer(str(report_dir / "indices.tif"), "i")
        assert raster.renderer().type() == "singlebandpseudocolor"
    finally:
        app.exitQgis()

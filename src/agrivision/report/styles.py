"""QGIS styles of the report outputs, so that a GIS user sees the report's colours at once.

- ``report.gpkg`` gets the ``layer_styles`` table that QGIS reads (and writes) in a
  GeoPackage: one default style per layer, as QML (QGIS) and SLD 1.1 (other clients):
  fields by ``status``, zones on the red-to-green ramp by their rank in their field (``zone``
  of ``zones_n``: 1 = lowest index, red; the field's highest zone green, a single zone
  yellow; rules on both columns), problem polygons by ``class_name`` (the class labels) in
  the class schema's colours.
- ``indices.tif`` gets a QML sidecar (``indices.qml``, which QGIS loads with the raster):
  its first band on the index ramp over :data:`agrivision.report.palette.INDEX_RANGE`.

The colours are those of the HTML report (:mod:`agrivision.report.palette`).
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from agrivision.fields.table import PROBLEM_CODES
from agrivision.health.schema import ClassSchema
from agrivision.report.palette import INDEX_RANGE, RAMP, STATUS_COLOURS, zone_colours, zone_shade

_QGIS_VERSION = "3.28.0-Firenze"
_OUTLINE = "#232323"
_SLD_NS = {
    "xmlns": "http://www.opengis.net/sld",
    "xmlns:ogc": "http://www.opengis.net/ogc",
    "xmlns:se": "http://www.opengis.net/se",
    "xmlns:xlink": "http://www.w3.org/1999/xlink",
    "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xsi:schemaLocation": "http://www.opengis.net/sld "
    "http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd",
}
# The table as QGIS creates it (QgsOgrProviderUtils / GDAL's GPKG driver use the same columns).
_LAYER_STYLES = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
  styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"""


def layer_categories(schema: ClassSchema) -> dict[str, tuple[str, dict[str, str]]]:
    """The categorised style of the fields and problems layers: ``{layer: (attribute, {value: colour})}``."""
    return {
        "fields": ("status", dict(STATUS_COLOURS)),
        "problems": (
            "class_name",
            {schema.labels[code]: schema.hex_colours[code][:7] for code in PROBLEM_CODES},
        ),
    }


def zone_rules(pairs) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """One rule per zone shade: ``{label: (colour, [(zone, zones_n), ...])}``, lowest first.

    ``pairs`` are the ``(zone, zones_n)`` pairs the layer holds; zones of the same rank in
    their field share a shade (:func:`~agrivision.report.palette.zone_shade`) and a rule.
    """
    pairs = sorted(
        {(int(z), int(n)) for z, n in pairs}, key=lambda p: (p[0] - 1) / max(p[1] - 1, 1)
    )
    colours = zone_colours()
    rules: dict[int, list[tuple[int, int]]] = {}
    for zone, n in pairs:
        rules.setdefault(int(zone_shade(zone, n)), []).append((zone, n))
    return {
        ", ".join(f"zone {z} of {n}" for z, n in members): (colours[shade], members)
        for shade, members in sorted(rules.items())
    }


def write_gpkg_styles(path: Path, *, schema: ClassSchema) -> None:
    """Write the default QML + SLD style of the layers ``fields``, ``zones`` and ``problems``
    into ``path``'s ``layer_styles`` table (replacing earlier styles of those layers).

    Parameters
    ----------
    path
        A GeoPackage written by the report (its layers already there).
    schema
        Class names and colours of the problem polygons.

    Notes
    -----
    The zone rules cover the ``(zone, zones_n)`` pairs of the ``zones`` layer, as on the
    report's map.
    """
    with sqlite3.connect(path) as db:
        columns = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        styles = {
            layer: (f"{layer} by {attribute}", categorized_qml(attribute, colours),
                    categorized_sld(layer, attribute, colours))
            for layer, (attribute, colours) in layer_categories(schema).items()
        }  # fmt: skip
        if "zones" in columns:
            rules = zone_rules(db.execute("SELECT DISTINCT zone, zones_n FROM zones").fetchall())
            styles["zones"] = ("zones by rank in their field", rule_qml(rules), rule_sld(rules))
        db.execute(_LAYER_STYLES)
        db.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles')"
        )
        for layer, (name, qml, sld) in styles.items():
            if layer not in columns:
                continue
            db.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
            db.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', '')",
                (layer, columns[layer], name, qml, sld, f"agrivision report: {name}"),
            )  # fmt: skip


def write_raster_style(path: Path) -> Path:
    """Write the QML sidecar of an index COG (``indices.tif`` -> ``indices.qml``): band 1 on
    the index ramp over :data:`INDEX_RANGE` (index units)."""
    lo, hi = INDEX_RANGE
    qgis = ET.Element("qgis", version=_QGIS_VERSION, styleCategories="Symbology")
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(
        pipe, "rasterrenderer", type="singlebandpseudocolor", band="1", opacity="1",
        alphaBand="-1", classificationMin=str(lo), classificationMax=str(hi), nodataColor="",
    )  # fmt: skip
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader")
    shader.attrib.update(
        colorRampType="INTERPOLATED", classificationMode="2", clip="0",
        minimumValue=str(lo), maximumValue=str(hi),
    )  # fmt: skip
    for value, colour in zip(np.linspace(lo, hi, len(RAMP)), RAMP, strict=True):
        ET.SubElement(shader, "item", value=f"{value:g}", label=f"{value:g}", color=colour,
                      alpha="255")  # fmt: skip
    target = path.with_suffix(".qml")
    target.write_text(_qml_text(qgis), encoding="utf-8")
    return target


def categorized_qml(attribute: str, colours: Mapping[str, str]) -> str:
    """A QGIS categorised fill renderer: one category per value of ``attribute``."""
    qgis = ET.Element("qgis", version=_QGIS_VERSION, styleCategories="Symbology")
    renderer = ET.SubElement(
        qgis, "renderer-v2", type="categorizedSymbol", attr=attribute, symbollevels="0",
        enableorderby="0", forceraster="0",
    )  # fmt: skip
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (value, colour) in enumerate(colours.items()):
        ET.SubElement(categories, "category", symbol=str(i), value=value, label=value,
                      render="true")  # fmt: skip
        _qml_fill(symbols, str(i), colour)
    return _qml_text(qgis)


def rule_qml(rules: Mapping[str, tuple[str, list[tuple[int, int]]]]) -> str:
    """A QGIS rule-based fill renderer of :func:`zone_rules`: a rule per shade."""
    qgis = ET.Element("qgis", version=_QGIS_VERSION, styleCategories="Symbology")
    renderer = ET.SubElement(
        qgis, "renderer-v2", type="RuleRenderer", symbollevels="0", enableorderby="0",
        forceraster="0",
    )  # fmt: skip
    root = ET.SubElement(renderer, "rules", key="zones")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (label, (colour, members)) in enumerate(rules.items()):
        condition = " OR ".join(f'("zone" = {z} AND "zones_n" = {n})' for z, n in members)
        ET.SubElement(root, "rule", key=f"shade{i}", symbol=str(i), label=label, filter=condition)
        _qml_fill(symbols, str(i), colour)
    return _qml_text(qgis)


def _qml_fill(symbols: ET.Element, name: str, colour: str) -> None:
    symbol = ET.SubElement(symbols, "symbol", type="fill", name=name, alpha="0.7",
                           clip_to_extent="1", force_rhr="0")  # fmt: skip
    layer = ET.SubElement(
        symbol, "layer", attrib={"class": "SimpleFill", "pass": "0", "locked": "0", "enabled": "1"}
    )
    props = {"color": _qgis_rgba(colour), "outline_color": _qgis_rgba(_OUTLINE),
             "outline_style": "solid", "outline_width": "0.26", "outline_width_unit": "MM",
             "style": "solid"}  # fmt: skip
    # QGIS >= 3.26 reads the Option map, older 3.x the prop elements: write both.
    options = ET.SubElement(layer, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(options, "Option", type="QString", name=k, value=v)
    for k, v in props.items():
        ET.SubElement(layer, "prop", k=k, v=v)


def categorized_sld(layer: str, attribute: str, colours: Mapping[str, str]) -> str:
    """The same categories as an SLD 1.1 (Symbology Encoding) document."""
    root, fts = _sld_style(layer, f"{layer} by {attribute}")
    for value, colour in colours.items():
        rule = _sld_rule(fts, value, colour)
        equal = ET.SubElement(ET.SubElement(rule, "ogc:Filter"), "ogc:PropertyIsEqualTo")
        ET.SubElement(equal, "ogc:PropertyName").text = attribute
        ET.SubElement(equal, "ogc:Literal").text = value
    return _sld_text(root)


def rule_sld(rules: Mapping[str, tuple[str, list[tuple[int, int]]]]) -> str:
    """:func:`zone_rules` as an SLD 1.1 document: a rule per shade, filters on ``zone`` and ``zones_n``."""
    root, fts = _sld_style("zones", "zones by rank in their field")
    for label, (colour, members) in rules.items():
        rule = _sld_rule(fts, label, colour)
        parent = ET.SubElement(rule, "ogc:Filter")
        if len(members) > 1:
            parent = ET.SubElement(parent, "ogc:Or")
        for zone, n in members:
            both = ET.SubElement(parent, "ogc:And")
            for name, value in (("zone", zone), ("zones_n", n)):
                equal = ET.SubElement(both, "ogc:PropertyIsEqualTo")
                ET.SubElement(equal, "ogc:PropertyName").text = name
                ET.SubElement(equal, "ogc:Literal").text = str(value)
    return _sld_text(root)


def _sld_style(layer: str, name: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("StyledLayerDescriptor", version="1.1.0", attrib=_SLD_NS)
    named = ET.SubElement(root, "NamedLayer")
    ET.SubElement(named, "se:Name").text = layer
    style = ET.SubElement(named, "UserStyle")
    ET.SubElement(style, "se:Name").text = name
    return root, ET.SubElement(style, "se:FeatureTypeStyle")


def _sld_rule(fts: ET.Element, name: str, colour: str) -> ET.Element:
    """A rule with a polygon symbolizer; its filter goes before the symbolizer, as SE wants."""
    rule = ET.SubElement(fts, "se:Rule")
    ET.SubElement(rule, "se:Name").text = name
    symbolizer = ET.Element("se:PolygonSymbolizer")
    fill = ET.SubElement(symbolizer, "se:Fill")
    ET.SubElement(fill, "se:SvgParameter", name="fill").text = colour
    ET.SubElement(fill, "se:SvgParameter", name="fill-opacity").text = "0.7"
    stroke = ET.SubElement(symbolizer, "se:Stroke")
    ET.SubElement(stroke, "se:SvgParameter", name="stroke").text = _OUTLINE
    ET.SubElement(stroke, "se:SvgParameter", name="stroke-width").text = "1"
    rule.append(symbolizer)  # moved after the filter by _sld_text
    return rule


def _sld_text(root: ET.Element) -> str:
    for rule in root.iter("se:Rule"):  # Name, Filter, then the symbolizer
        symbolizer = rule.find("se:PolygonSymbolizer")
        if symbolizer is not None:
            rule.remove(symbolizer)
            rule.append(symbolizer)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _qgis_rgba(colour: str) -> str:
    return ",".join(str(int(colour[i : i + 2], 16)) for i in (1, 3, 5)) + ",255"


def _qml_text(root: ET.Element) -> str:
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="unicode"
    )

"""QGIS styles of the report outputs, so that a GIS user sees the report's colours at once.

- ``report.gpkg`` gets the ``layer_styles`` table that QGIS reads (and writes) in a
  GeoPackage: one default style per layer, as QML (QGIS) and SLD 1.1 (other clients):
  fields by ``status``, zones by ``zone`` on the red-to-green ramp (1 = lowest index, red),
  problem polygons by ``class_name`` (the class labels) in the class schema's colours.
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
from agrivision.report.palette import INDEX_RANGE, RAMP, STATUS_COLOURS, zone_colours

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


def layer_categories(schema: ClassSchema, n_zones: int) -> dict[str, tuple[str, dict[str, str]]]:
    """The categorised style of each report layer: ``{layer: (attribute, {value: colour})}``."""
    return {
        "fields": ("status", dict(STATUS_COLOURS)),
        "zones": ("zone", {str(k): c for k, c in zone_colours(n_zones).items()}),
        "problems": (
            "class_name",
            {schema.labels[code]: schema.hex_colours[code][:7] for code in PROBLEM_CODES},
        ),
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
    The zone ramp is as long as the highest zone number in the ``zones`` layer, as on the
    report's map.
    """
    with sqlite3.connect(path) as db:
        columns = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        most = db.execute("SELECT max(zone) FROM zones").fetchone() if "zones" in columns else None
        n_zones = int(most[0]) if most and most[0] is not None else 1
        db.execute(_LAYER_STYLES)
        db.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles')"
        )
        for layer, (attribute, colours) in layer_categories(schema, n_zones).items():
            if layer not in columns:
                continue
            db.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
            db.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', '')",
                (layer, columns[layer], f"{layer} by {attribute}",
                 categorized_qml(attribute, colours), categorized_sld(layer, attribute, colours),
                 f"agrivision report: {layer} coloured by {attribute}"),
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
        symbol = ET.SubElement(symbols, "symbol", type="fill", name=str(i), alpha="0.7",
                               clip_to_extent="1", force_rhr="0")  # fmt: skip
        layer = ET.SubElement(
            symbol,
            "layer",
            attrib={"class": "SimpleFill", "pass": "0", "locked": "0", "enabled": "1"},
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
    return _qml_text(qgis)


def categorized_sld(layer: str, attribute: str, colours: Mapping[str, str]) -> str:
    """The same categories as an SLD 1.1 (Symbology Encoding) document."""
    root = ET.Element("StyledLayerDescriptor", version="1.1.0", attrib=_SLD_NS)
    named = ET.SubElement(root, "NamedLayer")
    ET.SubElement(named, "se:Name").text = layer
    style = ET.SubElement(named, "UserStyle")
    ET.SubElement(style, "se:Name").text = f"{layer} by {attribute}"
    fts = ET.SubElement(style, "se:FeatureTypeStyle")
    for value, colour in colours.items():
        rule = ET.SubElement(fts, "se:Rule")
        ET.SubElement(rule, "se:Name").text = value
        equal = ET.SubElement(ET.SubElement(rule, "ogc:Filter"), "ogc:PropertyIsEqualTo")
        ET.SubElement(equal, "ogc:PropertyName").text = attribute
        ET.SubElement(equal, "ogc:Literal").text = value
        symbolizer = ET.SubElement(rule, "se:PolygonSymbolizer")
        fill = ET.SubElement(symbolizer, "se:Fill")
        ET.SubElement(fill, "se:SvgParameter", name="fill").text = colour
        ET.SubElement(fill, "se:SvgParameter", name="fill-opacity").text = "0.7"
        stroke = ET.SubElement(symbolizer, "se:Stroke")
        ET.SubElement(stroke, "se:SvgParameter", name="stroke").text = _OUTLINE
        ET.SubElement(stroke, "se:SvgParameter", name="stroke-width").text = "1"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _qgis_rgba(colour: str) -> str:
    return ",".join(str(int(colour[i : i + 2], 16)) for i in (1, 3, 5)) + ",255"


def _qml_text(root: ET.Element) -> str:
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="unicode"
    )

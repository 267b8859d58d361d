"""Small valid inputs that the hostile cases start from (EPSG:32633, 10 m pixels)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rasters import write_tif


def s2(tmp: Path, name: str = "s2.tif", **kw) -> Path:
    """A valid 32 x 32 Sentinel-2 L2A file (blue, green, red, nir) in EPSG:32633."""
    data = np.random.default_rng(0).integers(1000, 5000, size=(4, 32, 32), dtype=np.uint16)
    kw.setdefault("descriptions", ["B02", "B03", "B04", "B08"])
    kw.setdefault("tags", {"SENSOR": "sentinel-2-l2a", "DATETIME": "2024-06-12"})
    return write_tif(tmp / name, data, nodata=0, **kw)


SQUARE = [[500050, 5799950], [500250, 5799950], [500250, 5799750], [500050, 5799750]]
UTM_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}


def geojson(tmp: Path, features: list[dict], *, name="fields.geojson", crs=UTM_CRS) -> Path:
    doc = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        doc["crs"] = crs
    path = tmp / name
    path.write_text(json.dumps(doc))
    return path


def feature(geometry: dict | None, **props) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def polygon(ring=SQUARE) -> dict:
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

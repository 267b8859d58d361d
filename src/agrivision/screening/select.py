"""The kept scenes as something :func:`agrivision.open_scene` reads.

- ``*.json``: a STAC ItemCollection, one Item per kept scene (original Items are copied with
  absolute hrefs; files get a minimal Item: datetime, bbox/geometry in WGS84, ``proj:``
  fields, one asset per file with its bands' descriptions as ``eo:bands`` names).
- anything else (``*.txt``): a file list, one path per line, for ``open_scene(paths)`` or
  ``agrivision info $(cat kept.txt)``.

Scenes that are one band of a dates-as-bands file cannot be expressed that way (an asset is
a whole file); they are left out with a warning — use the table's ``keep`` column.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from pathlib import Path

import rasterio
from rasterio.warp import transform_bounds

from agrivision.io.atomic import atomic_path
from agrivision.io.sources import resolve_href
from agrivision.screening.scenes import SceneRef
from agrivision.screening.screen import ScreenResult

logger = logging.getLogger(__name__)


def write_selection(
    result: ScreenResult, path: str | os.PathLike, *, overwrite: bool = True
) -> tuple[Path, int, int]:
    """Write the kept scenes of a screening as a STAC ItemCollection or a file list.

    Returns
    -------
    tuple
        ``(path, scenes written, kept scenes left out)``: left out are bands of
        dates-as-bands files.
    """
    kept = [s for s, k in zip(result.scenes, result.table["keep"], strict=True) if k]
    whole = [s for s in kept if s.band is None]
    skipped = len(kept) - len(whole)
    if skipped:
        logger.warning(
            "%d kept scenes are single dates of multi-date files and are not in %s "
            "(see the table's keep column)",
            skipped,
            path,
        )
    target = Path(path)
    if target.suffix.lower() in (".json", ".geojson"):
        doc = {"type": "FeatureCollection", "features": [stac_item(s) for s in whole]}
        text = json.dumps(doc, indent=1)
    else:
        files = dict.fromkeys(
            str(Path(f).resolve()) for s in whole for f in (s.files or [s.source])
        )
        text = "".join(f"{f}\n" for f in files)
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target, len(whole), skipped


def stac_item(scene: SceneRef) -> dict:
    """A STAC Item for a scene (a deep copy with absolute hrefs when it came from one)."""
    if scene.item is not None:
        item = copy.deepcopy(scene.item)
        for asset in item.get("assets", {}).values():
            if "href" in asset and not asset["href"].startswith(("http", "s3://", "/vsi")):
                asset["href"] = resolve_href(asset["href"], scene.source)
        return item
    props: dict = {"datetime": scene.date.isoformat() + "Z" if scene.date else None}
    geometry, bbox = None, None
    if scene.crs is not None:
        left, bottom, right, top = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
        bbox = [left, bottom, right, top]
        geometry = {
            "type": "Polygon",
            "coordinates": [
                [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
            ],
        }
        epsg = scene.crs.to_epsg()
        props.update({"proj:epsg": epsg} if epsg else {"proj:wkt2": scene.crs.to_wkt()})
        props["proj:shape"] = list(scene.shape)
        props["proj:transform"] = list(scene.transform)[:6]
    assets = {}
    for f in scene.files or [scene.source]:
        with rasterio.open(f) as src:
            descriptions, sensor = src.descriptions, src.tags().get("SENSOR")
        if sensor:
            props.setdefault("agrivision:sensor", sensor)
        asset = {"href": str(Path(f).resolve()), "roles": ["data"], "type": _media_type(f)}
        if any(descriptions):
            asset["eo:bands"] = [{"name": d or f"b{i}"} for i, d in enumerate(descriptions, 1)]
        assets[_asset_key(f, scene)] = asset
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
        "id": scene.scene_id,
        "geometry": geometry,
        "properties": props,
        "assets": assets,
        "links": [],
    }
    if bbox is not None:
        item["bbox"] = bbox
    return item


def _asset_key(path: str, scene: SceneRef) -> str:
    if len(scene.files) <= 1:
        return "data"
    # Band files of one scene: the part of the name that differs is the band (B04, SCL...).
    stem = Path(path).stem
    other = [Path(f).stem for f in scene.files if f != path]
    tokens = [t for t in stem.split("_") if not all(t in o.split("_") for o in other)]
    tokens = [t for t in tokens if not re.fullmatch(r"\d{2,3}m", t, re.IGNORECASE)]
    return "_".join(tokens) or stem


def _media_type(path: str) -> str:
    if path.lower().endswith((".tif", ".tiff")):
        return "image/tiff; application=geotiff"
    return "application/octet-stream"

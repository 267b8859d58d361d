"""What the report page's script draws: the field table, the per-date series and the map.

The table is embedded whole (every column of ``fields.csv``), so the page can show a card
for any field, not only the server-rendered ones, and filter and sort without a server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from agrivision.fields.table import CLASS_SLUGS
from agrivision.health.schema import ClassSchema
from agrivision.report.config import ReportConfig
from agrivision.report.palette import (
    INDEX_RANGE,
    PATCH_COLOUR,
    PEER_Z_RANGE,
    RAMP,
    SHARE_RAMP,
    STATUS_COLOURS,
)
from agrivision.report.webmap import map_layers


def page_data(
    table: gpd.GeoDataFrame,
    series: pd.DataFrame | None,
    *,
    gpkg: Path,
    indices_tif: Path,
    classes_tif: Path,
    schema: ClassSchema,
    config: ReportConfig,
    shares: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON-ready data of ``report.html``.

    Parameters
    ----------
    table
        The field table (scene CRS).
    series
        The per-field, per-date series, or None for one date.
    gpkg, indices_tif, classes_tif
        The written ``report.gpkg`` (layers ``zones`` and ``problems``) and rasters.
    schema
        Class codes, labels and colours.
    config
        The run config (time-series index, basemap tiles).
    shares
        With a model: the share columns of the ``cells`` layer that colour a grid cell.
    """
    frame = pd.DataFrame(table.drop(columns="geometry"))
    ts = f"{config.timeseries.index.lower()}_mean"
    return {
        "table": {
            **json.loads(frame.to_json(orient="split", index=False, double_precision=6)),
            "kinds": [frame[c].dtype.kind for c in frame.columns],
        },
        "series": _series(series, ts),
        "classes": [
            {"slug": slug, "label": schema.labels[code]} for code, slug in CLASS_SLUGS.items()
        ],
        "colours": {
            "status": STATUS_COLOURS,
            "ramp": list(RAMP),
            "index_range": list(INDEX_RANGE),
            "peer_z_range": list(PEER_Z_RANGE),
            "share_ramp": list(SHARE_RAMP),
            "patch": PATCH_COLOUR,
            "classes": {str(k): v[:7] for k, v in schema.hex_colours.items()},
        },
        "map": map_layers(table, gpkg, indices_tif, classes_tif, schema, shares),
        "tiles": config.output.map_tiles,
    }


def _series(series: pd.DataFrame | None, column: str) -> dict[str, Any] | None:
    if series is None or column not in series:
        return None
    cols = ["field_id", "date", column, *(["cloud_suspect"] if "cloud_suspect" in series else [])]
    data = json.loads(series[cols].to_json(orient="split", index=False, double_precision=6))
    return {"column": column, **data}

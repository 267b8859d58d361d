"""Figures of the HTML report, read back from the COGs the report wrote.

Reading the written ``indices.tif`` / ``classes.tif`` (windows per field, overviews for the
whole-scene map) costs a few small reads instead of recomputing the dask graph.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.windows
from rasterio.enums import Resampling

from agrivision.errors import ResourceLimitError
from agrivision.fields.table import CLASS_SLUGS, INSUFFICIENT, problem_share
from agrivision.health.schema import DEFAULT_SCHEMA, ClassSchema
from agrivision.report import figures
from agrivision.report.config import ReportConfig
from agrivision.report.html import FieldCard

# Fields without enough data come last: their shares are not verdicts.
STATUS_ORDER = {"problem": 0, "watch": 1, "good": 2, INSUFFICIENT: 3}
OVERVIEW_PX = 900


def overview(table: gpd.GeoDataFrame, indices_tif: Path) -> str:
    """Whole-scene map: first index band (from the COG's overviews) and fields by status."""
    with rasterio.open(indices_tif) as src:
        scale = max(src.width, src.height) / OVERVIEW_PX
        shape = (
            max(1, round(src.height / max(scale, 1))),
            max(1, round(src.width / max(scale, 1))),
        )
        band = src.read(1, out_shape=shape, resampling=Resampling.average, masked=True)
        b = src.bounds
    rgba = _colourise(band.filled(np.nan))
    return figures.overview_map(
        list(table.geometry), list(table["status"]), list(table["field_id"].astype(str)),
        background=rgba, extent=(b.left, b.right, b.bottom, b.top),
    )  # fmt: skip


def build_cards(
    table: gpd.GeoDataFrame,
    indices_tif: Path,
    classes_tif: Path,
    series: pd.DataFrame | None,
    *,
    schema: ClassSchema = DEFAULT_SCHEMA,
    config: ReportConfig | None = None,
) -> list[FieldCard]:
    """One card per field, most affected first, at most ``config.output.max_cards``.

    Order: status (problem, watch, good, insufficient data), then problem share, largest
    first. ``schema`` gives the class colours and the labels of the class-area table.
    """
    config = config or ReportConfig()
    order = table.assign(
        _s=table["status"].map(STATUS_ORDER), _p=-problem_share(table)
    ).sort_values(["_s", "_p"], kind="stable")
    order = order[~order["outside_scene"]].head(config.output.max_cards)
    cards = []
    with rasterio.open(indices_tif) as idx, rasterio.open(classes_tif) as cls:
        index_name = idx.descriptions[0] or "index"
        if not order.empty:
            draw = figures.CardFigures(index_name, schema.hex_colours, vmin=-0.2)
        for _, row in order.iterrows():
            cards.append(_card(row, idx, cls, draw, series, schema, config))
    return cards


def _card(row, idx, cls, draw: figures.CardFigures, series, schema, config) -> FieldCard:
    geom = row.geometry
    index_name = draw.index_name
    values, extent, inside = _window(idx, geom, config.output.max_field_pixels)
    classes, _, _ = _window(cls, geom, config.output.max_field_pixels)
    values = np.where(inside, values, np.nan)
    classes = np.where(inside, classes, 0)
    images = [
        ("index map", draw.index_map(values, extent, geom)),
        ("classes", draw.class_map(classes, extent, geom)),
        ("histogram", draw.histogram(values)),
    ]
    if series is not None:
        own = series[series["field_id"] == row["field_id"]]
        col = f"{config.timeseries.index.lower()}_mean"
        if col in own and len(own) > 1:
            group = row.get("peer_group")
            title = col if group is None or pd.isna(group) else f"{col} · peers: {group}"
            suspect = list(own["cloud_suspect"]) if "cloud_suspect" in own else None
            chart = figures.time_series(list(own["date"]), list(own[col]), title=title,
                                        suspect=suspect)  # fmt: skip
            images.append(("time series", chart))
    key = index_name.lower()
    facts = {
        "area": f"{row['area_ha']:.2f} ha",
        "valid data": f"{100 * row['valid_fraction']:.0f} %",
        f"{index_name} mean": _fmt(row.get(f"{key}_mean")),
        f"{index_name} p10–p90": f"{_fmt(row.get(f'{key}_p10'))} – {_fmt(row.get(f'{key}_p90'))}",
        "problem area": _ha(row["problem_area_ha"]),
        "largest anomaly patch": f"{row['anomaly_patch_ha']:.2f} ha",
    }
    if "crop" in row:
        facts["crop"] = str(row["crop"])
    if pd.notna(row.get("peer_z")):
        facts["vs. peers (z)"] = f"{row['peer_z']:+.1f} among {row['peer_group']} ({row['peer_n']})"
    if row["status_reason"]:
        facts["why"] = row["status_reason"]
    if "declining" in row and pd.notna(row.get(f"{config.timeseries.index.lower()}_change")):
        facts["change"] = _fmt(row[f"{config.timeseries.index.lower()}_change"])
        if pd.notna(row.get(f"{config.timeseries.index.lower()}_peer_change")):
            facts["peers' change"] = _fmt(row[f"{config.timeseries.index.lower()}_peer_change"])
    flags = [
        f
        for f in ("hotspot", "low_valid_data", "partly_outside", "declining")
        if row.get(f) is True
    ]
    areas = [  # none where the field has too few usable pixels for a verdict
        (schema.labels[code], row[f"{slug}_ha"], row[f"{slug}_pct"])
        for code, slug in CLASS_SLUGS.items()
        if pd.notna(row[f"{slug}_pct"])
    ]
    return FieldCard(
        field_id=str(row["field_id"]), status=row["status"], facts=facts, flags=flags,
        images=images, class_areas=areas,
    )  # fmt: skip


def _window(src, geom, max_pixels: int):
    """The field's bounding window of band 1, decimated to at most ``max_pixels``."""
    raw = rasterio.windows.from_bounds(*geom.bounds, transform=src.transform)
    c0, r0 = max(0, int(np.floor(raw.col_off))), max(0, int(np.floor(raw.row_off)))
    c1 = min(src.width, int(np.ceil(raw.col_off + raw.width)))
    r1 = min(src.height, int(np.ceil(raw.row_off + raw.height)))
    win = rasterio.windows.Window(c0, r0, max(1, c1 - c0), max(1, r1 - r0))
    step = max(1, int(np.ceil(np.sqrt(win.width * win.height / max_pixels))))
    if win.width * win.height / step**2 > max_pixels:
        raise ResourceLimitError(f"field window {win} exceeds {max_pixels} pixels")
    shape = (max(1, int(win.height // step)), max(1, int(win.width // step)))
    data = src.read(1, window=win, out_shape=shape, resampling=Resampling.nearest)
    transform = src.window_transform(win) * rasterio.Affine.scale(
        win.width / shape[1], win.height / shape[0]
    )
    # all_touched: small or narrow fields still show their edge pixels.
    inside = ~rasterio.features.geometry_mask([geom], shape, transform, all_touched=True)
    left, top = transform.c, transform.f
    extent = (left, left + transform.a * shape[1], top + transform.e * shape[0], top)
    return data.astype(np.float32), extent, inside


def _colourise(band: np.ndarray) -> np.ndarray:
    import matplotlib

    rgba = matplotlib.colormaps["RdYlGn"](np.clip((band + 0.2) / 1.2, 0, 1))
    rgba[~np.isfinite(band)] = (1, 1, 1, 0)
    return rgba


def _ha(value) -> str:
    return "–" if pd.isna(value) else f"{float(value):.2f} ha"


def _fmt(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.3f}"

"""The field table: one row per field with the answers GIS users see.

Column names are stable and documented in the README (they are the product's interface):
``field_id, area_ha, coverage, date, valid_fraction, <index>_<stat>...,
<class>_pct, <class>_ha..., problem_area_ha, hotspot, low_valid_data, outside_scene,
partly_outside, status``, ``crop`` (when the fields have one), ``peer_group, peer_n,
peer_z`` and, with two or more dates, ``<index>_change, <index>_peer_change, previous_date,
declining``.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from agrivision.config import ReportConfig
from agrivision.fields.peers import peer_groups, relative_decline
from agrivision.fields.timeseries import field_change, field_series
from agrivision.fields.zonal import zonal_stats
from agrivision.io.fields import area_ha, crop_column

INDEX_STATS = ("count", "valid_fraction", "mean", "std", "min", "max", "median", "p10", "p90")
#: Short, stable column prefixes for the health classes (codes of the default schema).
CLASS_SLUGS: Mapping[int, str] = {1: "healthy", 2: "stressed", 3: "pest", 4: "bare"}
PROBLEM_CODES = (2, 3)
_CLASSES = "__health_class"  # the class raster's (internal) variable name in zonal_stats


def field_table(
    fields: gpd.GeoDataFrame,
    indices: xr.Dataset,
    classes: xr.DataArray,
    *,
    config: ReportConfig | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame | None]:
    """Per-field statistics, class areas, flags and status; and the per-date series.

    Parameters
    ----------
    fields
        Fields with ``field_id``, in the raster's CRS (projected, metres).
    indices
        Lazy index variables (e.g. ``NDVI``), dims ``(y, x)`` or ``(time, y, x)``; NaN where
        masked. Statistics in the table are those of the last date.
    classes
        Lazy uint8 health classes of the last date on the same grid (0 = none).
    config
        Thresholds (``problems.*``, ``timeseries.*``); defaults when omitted.

    Returns
    -------
    (GeoDataFrame, DataFrame or None)
        The table (one row per field, geometry of the input) and, with a ``time`` dimension,
        the long per-field, per-date series (``field_id, date, valid_fraction,
        <index>_mean, cloud_suspect``).

    Raises
    ------
    FieldsError
        ``config.fields.crop_column`` is not a column of ``fields``.
    """
    config = config or ReportConfig()
    timed = "time" in indices.dims
    latest = indices.isel(time=-1) if timed else indices
    lower = latest.rename({v: str(v).lower() for v in latest.data_vars})
    # Class shares among the classified pixels (class 0, unclassified, is the nodata), in the
    # same pass: one byte per pixel, where one float32 indicator raster per class took 16.
    lower[_CLASSES] = classes.rename(None).drop_attrs().rio.write_nodata(0)
    stats = zonal_stats(lower, fields, stats=INDEX_STATS, fractions={_CLASSES: list(CLASS_SLUGS)})

    table = fields[["field_id"]].copy()
    crop = crop_column(fields, config.fields.crop_column)
    table["area_ha"] = area_ha(fields).to_numpy()
    stats = stats.set_index("field_id").loc[table["field_id"]].reset_index()
    table["coverage"] = stats["coverage"].to_numpy()
    if timed:
        table["date"] = str(np.datetime_as_string(indices.time.values[-1], "D"))
    elif "datetime" in indices.attrs:
        table["date"] = str(indices.attrs["datetime"])[:10]
    first = str(next(iter(latest.data_vars))).lower()
    table["valid_fraction"] = stats[f"{first}_valid_fraction"].fillna(0.0).to_numpy()
    for var in latest.data_vars:
        name = str(var).lower()
        for stat in INDEX_STATS[2:]:
            table[f"{name}_{stat}"] = stats[f"{name}_{stat}"].to_numpy()
    observed_ha = table["area_ha"] * table["coverage"] * table["valid_fraction"]
    for code, slug in CLASS_SLUGS.items():
        share = stats[f"{_CLASSES}_frac_{code}"].fillna(0.0).to_numpy()
        table[f"{slug}_pct"] = 100.0 * share
        table[f"{slug}_ha"] = share * observed_ha
    table["problem_area_ha"] = sum(table[f"{CLASS_SLUGS[c]}_ha"] for c in PROBLEM_CODES)
    problem_pct = sum(table[f"{CLASS_SLUGS[c]}_pct"] for c in PROBLEM_CODES)
    p = config.problems
    # A hotspot needs both a share and an area: one damaged pixel in a tiny field is noise.
    table["hotspot"] = (table["pest_pct"] >= p.hotspot_pct) & (table["pest_ha"] >= p.min_area_ha)
    table["low_valid_data"] = table["valid_fraction"] < config.timeseries.min_valid_fraction
    table["outside_scene"] = table["coverage"] <= 0.0
    table["partly_outside"] = (table["coverage"] > 0.0) & (table["coverage"] < 0.999)

    if crop is not None:
        table["crop"] = fields[crop].to_numpy()
    ts = config.timeseries
    if f"{ts.index.lower()}_mean" not in table:  # an index the run did not compute
        ts = ts.model_copy(update={"index": first})
    table = table.join(peer_groups(table, ts))
    series = None
    if timed:
        series = field_series(fields, indices, ts)
        table = table.join(relative_decline(table, field_change(series, ts), ts))

    table["status"] = np.select(
        [
            table["outside_scene"] | table["low_valid_data"],
            (problem_pct >= p.problem_pct) | table["hotspot"],
            problem_pct >= p.watch_pct,
        ],
        ["no data", "problem", "watch"],
        default="good",
    )
    if timed:
        table.loc[table["declining"] & (table["status"] == "good"), "status"] = "watch"
    return gpd.GeoDataFrame(table, geometry=fields.geometry.to_numpy(), crs=fields.crs), series

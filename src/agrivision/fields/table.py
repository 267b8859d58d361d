"""The field table: one row per field with the answers GIS users see.

Column names are stable and documented in the README (they are the product's interface):
``field_id, area_ha, coverage, date, valid_fraction, <index>_<stat>...,
<slug>_pct, <slug>_ha..., <model class>_pct... (with a model), problem_area_ha, anomaly_patch_ha, hotspot, low_valid_data,
outside_scene, partly_outside``, ``crop`` (when the fields have one), ``peer_group, peer_n,
peer_z, stressed_peer_pct`` and, with two or more dates, ``<index>_change, <index>_peer_change, previous_date,
declining``; then ``status, status_reason``. Class slugs come from the class schema
(:data:`agrivision.health.schema.DEFAULT_SCHEMA`).

Status: a verdict needs support. A field outside the scene, with too little cloud-free data
(``timeseries.min_valid_fraction``) or with fewer usable (classified) pixels than
``problems.min_pixels`` is ``insufficient data``; otherwise ``problem`` (a hotspot, or a
problem share of at least ``problems.problem_pct``), ``watch`` (a problem share of at least
``problems.watch_pct``, an index mean below its crop's fields by ``problems.peer_watch_z``
robust SDs, or declining) or ``good``. ``status_reason`` says which rule decided. The problem
share is judged against the field's crop (:func:`problem_share`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from agrivision.fields.class_shares import class_shares, probability_shares, share_columns
from agrivision.fields.config import FieldTableConfig, FieldTableSettings
from agrivision.fields.patches import largest_patch_ha
from agrivision.fields.peers import ALL_FIELDS, peer_groups, relative_decline
from agrivision.fields.timeseries import field_change, field_series
from agrivision.fields.zonal import zonal_stats
from agrivision.health.schema import DEFAULT_SCHEMA, HEALTH_CLASSES, PROBLEM_CLASSES
from agrivision.io.fields import area_ha, crop_column

INDEX_STATS = ("count", "valid_fraction", "mean", "std", "min", "max", "median", "p10", "p90")
#: Column prefixes of the health classes, by code (from the schema).
CLASS_SLUGS: Mapping[int, str] = {
    DEFAULT_SCHEMA.code(name): DEFAULT_SCHEMA.slugs[DEFAULT_SCHEMA.code(name)]
    for name in HEALTH_CLASSES
}
PROBLEM_CODES = tuple(DEFAULT_SCHEMA.code(name) for name in PROBLEM_CLASSES)
ANOMALY = DEFAULT_SCHEMA.code("anomaly")
STRESSED = DEFAULT_SCHEMA.code("stressed")
INSUFFICIENT = "insufficient data"
_CLASSES = "__health_class"  # the class raster's (internal) variable name in zonal_stats
_USABLE = "__usable"  # 1 classified, 2 observed but unclassified (an edge pixel), 0 neither


def field_table(
    fields: gpd.GeoDataFrame,
    indices: xr.Dataset,
    classes: xr.DataArray,
    *,
    config: FieldTableSettings | None = None,
    predictions: xr.DataArray | None = None,
    probabilities: xr.DataArray | None = None,
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
    predictions
        A model's own classes (:func:`agrivision.segment.model_classes.model_predictions`,
        255 = none): adds each class's share of the field's predicted pixels as
        ``<class>_pct`` (e.g. ``weed_pct``; ``model_<class>_pct`` where a schema column has
        that name) after the health-class columns.
    probabilities
        The same model's class probabilities
        (:func:`agrivision.segment.model_classes.model_outputs`): the ``<class>_pct`` shares
        are then expected shares, the mean probability of each class over the field's pixels
        (:func:`agrivision.fields.class_shares.probability_shares`).

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

    Notes
    -----
    Besides the zonal pass over ``indices`` and ``classes``, the anomaly patches take one
    more pass over ``classes`` (:func:`~agrivision.fields.patches.largest_patch_ha`).
    """
    config = config or FieldTableConfig()
    timed = "time" in indices.dims
    latest = indices.isel(time=-1) if timed else indices
    lower = latest.rename({v: str(v).lower() for v in latest.data_vars})
    # Class shares among the classified pixels (class 0, unclassified, is the nodata), in the
    # same pass: one byte per pixel, where one float32 indicator raster per class took 16.
    lower[_CLASSES] = classes.rename(None).drop_attrs().rio.write_nodata(0)
    lower[_USABLE] = _usable(classes, lower[str(next(iter(lower.data_vars)))])
    stats = zonal_stats(
        lower, fields, stats=INDEX_STATS,
        fractions={_CLASSES: list(CLASS_SLUGS), _USABLE: [1]},
    )  # fmt: skip

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
    if predictions is not None:
        names = json.loads(predictions.attrs["class_names"])
        columns = share_columns(names, taken=table.columns)
        if probabilities is not None:
            shares = probability_shares(probabilities, fields, names, columns=columns)
        else:
            shares = class_shares(predictions, fields, names, columns=columns)
        for column in columns:
            table[column] = shares[column].to_numpy()
    table["problem_area_ha"] = sum(table[f"{CLASS_SLUGS[c]}_ha"] for c in PROBLEM_CODES)
    p = config.problems
    table["anomaly_patch_ha"] = largest_patch_ha(classes, fields, code=ANOMALY).to_numpy()
    table["low_valid_data"] = table["valid_fraction"] < config.timeseries.min_valid_fraction
    table["outside_scene"] = table["coverage"] <= 0.0
    table["partly_outside"] = (table["coverage"] > 0.0) & (table["coverage"] < 0.999)
    # Usable pixels: observed and classified (edge pixels get no class): the support count.
    usable_px = stats[f"{first}_count"].fillna(0.0) * stats[f"{_USABLE}_frac_1"].fillna(0.0)
    lacking = _lacking_support(table, usable_px, config)
    # No verdict from too few pixels: a field's class shares are not reported at all (NaN)
    # rather than e.g. "healthy 100 %" from a handful of pixels beside "insufficient data".
    no_verdict = [f"{slug}_{unit}" for slug in CLASS_SLUGS.values() for unit in ("pct", "ha")]
    table.loc[lacking != "", [*no_verdict, "problem_area_ha"]] = np.nan
    slug = CLASS_SLUGS[ANOMALY]
    table["hotspot"] = (
        (lacking == "")
        & (table[f"{slug}_pct"] >= p.hotspot_pct)
        & (table["anomaly_patch_ha"] >= p.hotspot_min_ha)
    )

    if crop is not None:
        table["crop"] = fields[crop].to_numpy()
    ts = config.timeseries
    if f"{ts.index.lower()}_mean" not in table:  # an index the run did not compute
        ts = ts.model_copy(update={"index": first})
    supported = pd.Series(lacking == "", index=table.index)
    table = table.join(peer_groups(table, ts, supported=supported))
    table["stressed_peer_pct"] = _crop_median(table, f"{CLASS_SLUGS[STRESSED]}_pct", supported)
    problem_pct = problem_share(table)
    series = None
    if timed:
        series = field_series(fields, indices, ts)
        table = table.join(relative_decline(table, field_change(series, ts), ts))

    verdicts = [
        _verdict(lack, hot, patch, pct, crop_pct, crop_z, bool(declining), config)
        for lack, hot, patch, pct, crop_pct, crop_z, declining in zip(
            lacking, table["hotspot"], table["anomaly_patch_ha"], problem_pct,
            table["stressed_peer_pct"],
            table["peer_z"].where(table["peer_group"] != ALL_FIELDS),
            table["declining"] if timed else np.zeros(len(table), bool), strict=True,
        )
    ]  # fmt: skip
    table["status"] = [status for status, _ in verdicts]
    table["status_reason"] = [reason for _, reason in verdicts]
    return gpd.GeoDataFrame(table, geometry=fields.geometry.to_numpy(), crs=fields.crs), series


def problem_share(table: pd.DataFrame) -> pd.Series:
    """Share (%) of each field's classified area in a problem class, judged against its crop.

    The anomaly share counts as it is (anomalies are already judged against the field's own
    pixels). The stressed share counts only beyond ``stressed_peer_pct``, the median stressed
    share of the field's crop group when there is one: the absolute NDVI/NDRE thresholds
    call a whole ripening or senescing crop "stressed", which is no problem of one field.
    Without a crop group (``peer_group`` "all fields") the stressed share counts whole.
    """
    stressed = table[f"{CLASS_SLUGS[STRESSED]}_pct"]
    if "stressed_peer_pct" in table:
        stressed = (stressed - table["stressed_peer_pct"].fillna(0.0)).clip(lower=0.0)
    return table[f"{CLASS_SLUGS[ANOMALY]}_pct"] + stressed


def _crop_median(table: pd.DataFrame, column: str, supported: pd.Series) -> pd.Series:
    """Median of ``column`` over the supported fields of each field's crop group (NaN for
    fields compared with all fields: no crop to compare with)."""
    judged = table[supported & (table["peer_group"] != ALL_FIELDS)]
    medians = judged.groupby("peer_group")[column].median()
    return table["peer_group"].map(medians).astype(float)


def _usable(classes: xr.DataArray, index: xr.DataArray) -> xr.DataArray:
    """uint8: 1 where a pixel has a class, 2 where it is observed but has none, else 0."""
    unclassified = xr.where(np.isfinite(index), np.uint8(2), np.uint8(0))
    usable = xr.where(classes.rename(None).drop_attrs() > 0, np.uint8(1), unclassified)
    return usable.astype(np.uint8).rio.write_nodata(0)


def _lacking_support(
    table: pd.DataFrame, observed_px: pd.Series, config: FieldTableSettings
) -> np.ndarray:
    """Why each field has too little data for a verdict ("" where it has enough)."""
    min_valid = config.timeseries.min_valid_fraction
    min_px = config.problems.min_pixels
    reasons = []
    columns = (table["coverage"], table["valid_fraction"], observed_px)
    for coverage, valid, px in zip(*columns, strict=True):
        if coverage <= 0.0:
            reasons.append("outside the scene")
        elif valid < min_valid:
            reasons.append(f"valid fraction {valid:.2f} < {min_valid:g}")
        elif px < min_px:
            reasons.append(f"{px:.0f} usable pixels < {min_px}")
        else:
            reasons.append("")
    return np.array(reasons, dtype=object)


def _verdict(
    lacking: str, hotspot: bool, patch_ha: float, problem_pct: float, crop_pct: float,
    crop_z: float, declining: bool, config: FieldTableSettings,
) -> tuple[str, str]:  # fmt: skip
    """(status, reason) of one field."""
    p = config.problems
    if lacking:
        return INSUFFICIENT, lacking
    if hotspot:
        return "problem", f"anomaly patch {patch_ha:.2f} ha >= {p.hotspot_min_ha:g} ha"
    share = f"problem share {problem_pct:.0f} %"
    if np.isfinite(crop_pct):
        share += f" (stressed beyond its crop's {crop_pct:.0f} %)"
    if problem_pct >= p.problem_pct:
        return "problem", f"{share} >= {p.problem_pct:g} %"
    if problem_pct >= p.watch_pct:
        return "watch", f"{share} >= {p.watch_pct:g} %"
    if crop_z < p.peer_watch_z:  # NaN (no crop group) compares False
        ts = config.timeseries
        return (
            "watch",
            f"{ts.index} mean far below its crop (peer z {crop_z:.1f} < {p.peer_watch_z:g})",
        )
    if declining:
        ts = config.timeseries
        return "watch", f"{ts.index} mean fell by more than {ts.decline_threshold:g}"
    return "good", ""

"""Per-field, per-date index series: cloud-suspect dates and the change between clear dates.

A date is *usable* for a field when its valid fraction reaches
``timeseries.min_valid_fraction`` and the index mean is known. A usable date is
*cloud-suspect* when the field mean lies more than ``timeseries.cloud_dip`` below both
neighbouring usable dates: canopies do not lose and regain that much within one revisit,
while thin cloud, haze and cloud edges that masks miss lower NDVI by 0.1-0.5. Dips are
peeled off repeatedly, so two cloudy dates in a row (0.69, 0.40, 0.18, 0.66) are both
flagged. The first and last usable dates have one neighbour and are never flagged. A cut
(mowing) that regrows by the next date looks the same and is flagged too.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from agrivision.config import TimeSeriesConfig
from agrivision.fields.zonal import zonal_stats


def field_series(
    fields: gpd.GeoDataFrame, indices: xr.Dataset, config: TimeSeriesConfig
) -> pd.DataFrame:
    """The long per-field, per-date series of index means, with the ``cloud_suspect`` flag.

    Parameters
    ----------
    fields
        Fields with ``field_id``, in the raster's CRS.
    indices
        Lazy index variables with a ``time`` dimension; NaN where masked.
    config
        ``index``, ``min_valid_fraction`` and ``cloud_dip`` (index units).

    Returns
    -------
    DataFrame
        ``field_id, date (YYYY-MM-DD), valid_fraction, <index>_mean..., cloud_suspect``.
    """
    lower = indices.rename({v: str(v).lower() for v in indices.data_vars})
    stats = zonal_stats(lower, fields, stats=("valid_fraction", "mean"))
    first = str(next(iter(lower.data_vars)))
    out = pd.DataFrame(
        {
            "field_id": stats["field_id"],
            "date": pd.to_datetime(stats["time"]).dt.strftime("%Y-%m-%d"),
            "valid_fraction": stats[f"{first}_valid_fraction"].fillna(0.0),
        }
    )
    for var in lower.data_vars:
        out[f"{var}_mean"] = stats[f"{var}_mean"]
    out["cloud_suspect"] = cloud_suspect(out, config)
    return out


def cloud_suspect(series: pd.DataFrame, config: TimeSeriesConfig) -> pd.Series:
    """Flag usable dates whose index mean dips below both usable neighbours by > ``cloud_dip``.

    Parameters
    ----------
    series
        ``field_id, date, valid_fraction, <index>_mean`` (one row per field and date).
    config
        ``index``, ``min_valid_fraction`` and ``cloud_dip`` (index units, e.g. NDVI).

    Returns
    -------
    Series of bool
        Aligned with ``series``; False for dates that are not usable.
    """
    col = f"{config.index.lower()}_mean"
    flags = pd.Series(False, index=series.index, name="cloud_suspect")
    usable = series[(series["valid_fraction"] >= config.min_valid_fraction) & series[col].notna()]
    for _, group in usable.sort_values("date").groupby("field_id", sort=False):
        values = group[col].to_numpy(dtype=np.float64)
        kept = np.arange(len(values))
        while len(kept) >= 3:
            v = values[kept]
            dip = np.minimum(v[:-2], v[2:]) - v[1:-1] > config.cloud_dip
            if not dip.any():
                break
            kept = np.delete(kept, np.flatnonzero(dip) + 1)
        suspect = np.setdiff1d(np.arange(len(values)), kept)
        flags.loc[group.index[suspect]] = True
    return flags


def field_change(series: pd.DataFrame, config: TimeSeriesConfig) -> pd.DataFrame:
    """Change of the index mean between each field's last two clear dates.

    Clear dates are usable and not cloud-suspect (see the module docstring).

    Parameters
    ----------
    series
        Output of :func:`field_series`.
    config
        ``index`` and ``min_valid_fraction``.

    Returns
    -------
    DataFrame
        One row per field with a usable date: ``field_id, <index>_change`` (last minus
        previous clear date, index units; NaN with fewer than two), ``previous_date`` and
        ``last_date`` (None then).
    """
    col = f"{config.index.lower()}_mean"
    clear = series[
        (series["valid_fraction"] >= config.min_valid_fraction)
        & series[col].notna()
        & ~series["cloud_suspect"]
    ]
    rows = []
    for fid, group in clear.sort_values("date").groupby("field_id", sort=False):
        if len(group) < 2:
            rows.append((fid, np.nan, None, None))
            continue
        prev, last = group.iloc[-2], group.iloc[-1]
        rows.append((fid, float(last[col] - prev[col]), prev["date"], last["date"]))
    return pd.DataFrame(
        rows, columns=["field_id", f"{config.index.lower()}_change", "previous_date", "last_date"]
    )

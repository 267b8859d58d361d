"""Fields compared with fields of the same crop: ``peer_z`` and crop-relative decline.

A field's *peer group* is the set of fields with the same crop that have enough observed data
(inside the scene, valid fraction at least ``timeseries.min_valid_fraction``, an index mean).
A crop with fewer than :data:`MIN_PEERS` such fields, a field without a crop, and every
field when there is no crop column, are compared with all fields instead (``peer_group`` =
``"all fields"``). Five is the smallest group whose median and MAD one odd field cannot
drag along (it moves the median by at most one rank of five).

``peer_z`` is the robust z-score of the field's index mean on the table's date:
``(mean - median) / max(1.4826 * MAD, MAD_FLOOR)``. The floor keeps near-identical fields
(a uniform variety on one soil) from turning a 0.01 NDVI difference into a large z:
field-mean NDVI of one crop varies by about 0.02 between fields from radiometric noise
and sowing dates alone.

Decline is judged against the group: ``<index>_peer_change`` is the median change of the
group's fields whose last two clear dates are the field's own (a field cloudy on the table's
date still has a change from two earlier clear dates), and a field is ``declining``
when ``change - peer_change < -decline_threshold`` (a whole crop ripening is not decline).
Fewer than :data:`MIN_PEERS` such fields in the crop group: all fields with that date pair;
fewer still: no reference (``peer_change`` NaN) and the absolute ``change`` is judged.
Without a crop column every field is judged against all fields, i.e. against the scene.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from agrivision.fields.config import TimeSeriesConfig

MIN_PEERS = 5
#: Lowest robust spread of a group's index means (index units, NDVI).
MAD_FLOOR = 0.02
ALL_FIELDS = "all fields"


class PeersWarning(UserWarning):
    """Peer comparisons fall back to all fields (no crop column, or small crop groups)."""


def peer_groups(
    table: pd.DataFrame, config: TimeSeriesConfig, supported: pd.Series | None = None
) -> pd.DataFrame:
    """Each field's peer group and robust z-score among its peers on the table's date.

    Parameters
    ----------
    table
        The field table: ``field_id``, ``valid_fraction``, ``outside_scene``,
        ``<index>_mean`` and, when the fields have crops, ``crop``.
    config
        ``index`` (whose ``_mean`` column is compared) and ``min_valid_fraction``.
    supported
        Boolean, aligned with ``table``: fields with enough usable pixels for a verdict
        (``problems.min_pixels``); others are neither judged nor peers. Default: all.

    Returns
    -------
    DataFrame
        Aligned with ``table``: ``peer_group`` (the crop as text, or ``"all fields"``),
        ``peer_n`` (fields with enough data in that group) and ``peer_z`` (NaN for fields
        without enough data, or when the group has fewer than :data:`MIN_PEERS`).
    """
    value = table[f"{config.index.lower()}_mean"]
    observed = _observed(table, config)
    if supported is not None:
        observed &= supported
    group = _groups(table, observed)
    out = pd.DataFrame({"peer_group": group, "peer_n": 0, "peer_z": np.nan}, index=table.index)
    for key in group.unique():
        members = group == key
        peers = value[observed if key == ALL_FIELDS else observed & members]
        out.loc[members, "peer_n"] = len(peers)
        if len(peers) < MIN_PEERS:
            continue
        median = peers.median()
        spread = max(1.4826 * (peers - median).abs().median(), MAD_FLOOR)
        judged = members & observed
        out.loc[judged, "peer_z"] = (value[judged] - median) / spread
    return out


def relative_decline(
    table: pd.DataFrame, change: pd.DataFrame, config: TimeSeriesConfig
) -> pd.DataFrame:
    """The median change of each field's peers over its own pair of dates, and ``declining``.

    Parameters
    ----------
    table
        The field table with ``field_id`` and ``peer_group`` (see :func:`peer_groups`).
    change
        :func:`agrivision.fields.timeseries.field_change`: ``field_id, <index>_change,
        previous_date, last_date``.
    config
        ``index`` and ``decline_threshold`` (index units).

    Returns
    -------
    DataFrame
        Aligned with ``table``: ``<index>_change``, ``<index>_peer_change``,
        ``previous_date``, ``declining`` (False without a change).
    """
    name = config.index.lower()
    col, peer_col = f"{name}_change", f"{name}_peer_change"
    c = table[["field_id", "peer_group"]].merge(change, on="field_id", how="left")
    c.index = table.index
    c = c[c[col].notna()]  # two clear dates: enough data, even if the last date is cloudy
    by_pair = c.groupby(["previous_date", "last_date"])[col]
    by_group = c.groupby(["peer_group", "previous_date", "last_date"])[col]
    pair_median = by_pair.transform("median").where(by_pair.transform("size") >= MIN_PEERS)
    group_median = by_group.transform("median")
    own_crop = (c["peer_group"] != ALL_FIELDS) & (by_group.transform("size") >= MIN_PEERS)
    reference = group_median.where(own_crop, pair_median)
    out = pd.DataFrame(index=table.index)
    out[col] = c[col]
    out[peer_col] = reference
    out["previous_date"] = c["previous_date"]
    out["declining"] = (out[col] - out[peer_col].fillna(0.0) < -config.decline_threshold).astype(
        bool
    )
    return out


def _observed(table: pd.DataFrame, config: TimeSeriesConfig) -> pd.Series:
    """Fields with enough observed data for a comparison (inside, valid, index mean known)."""
    return (
        ~table["outside_scene"].astype(bool)
        & (table["valid_fraction"] >= config.min_valid_fraction)
        & table[f"{config.index.lower()}_mean"].notna()
    )


def _groups(table: pd.DataFrame, observed: pd.Series) -> pd.Series:
    """The crop as text where its group is large enough, else ``"all fields"`` (and say so)."""
    if "crop" not in table:
        warnings.warn(
            "peer comparisons: the fields have no crop column, so every field is compared "
            "with all fields (peer_group 'all fields'); name one with --crop-column",
            PeersWarning,
            stacklevel=3,
        )
        return pd.Series(ALL_FIELDS, index=table.index)
    crop = table["crop"].astype("string").str.strip()
    counts = crop[observed].value_counts()
    small = counts[counts < MIN_PEERS]
    missing = int(crop.isna().sum())
    if len(small) or missing:
        named = ", ".join(f"{k!s} ({v})" for k, v in small.head(5).items())
        warnings.warn(
            f"peer comparisons: {len(small)} crops have fewer than {MIN_PEERS} fields with "
            f"enough data ({named}{', ...' if len(small) > 5 else ''})"
            + (f" and {missing} fields have no crop" if missing else "")
            + "; they are compared with all fields",
            PeersWarning,
            stacklevel=3,
        )
    large = crop.isin(counts.index[counts >= MIN_PEERS]).fillna(False).astype(bool)
    return crop.where(large, ALL_FIELDS).astype(object)

"""Per-date series: cloud-suspect dips and the change between the last two clear dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agrivision.fields.config import TimeSeriesConfig
from agrivision.fields.timeseries import cloud_suspect, field_change

CONFIG = TimeSeriesConfig()  # NDVI, cloud_dip 0.15, min_valid_fraction 0.5
DATES = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]


def series(values: dict, valid: dict | None = None, dates=DATES) -> pd.DataFrame:
    """Long series from {field_id: [ndvi per date]} (optionally valid fractions per date)."""
    rows = []
    for fid, ndvi in values.items():
        fractions = (valid or {}).get(fid, [1.0] * len(ndvi))
        for date, v, f in zip(dates, ndvi, fractions, strict=False):
            rows.append({"field_id": fid, "date": date, "valid_fraction": f, "ndvi_mean": v})
    out = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter
    out["cloud_suspect"] = cloud_suspect(out, CONFIG)
    return out


def flags(s: pd.DataFrame, fid) -> list[bool]:
    return s[s["field_id"] == fid].sort_values("date")["cloud_suspect"].tolist()


def test_two_cloudy_dates_in_a_row_are_both_flagged():
    # Real Slovenia fields over two hazy dates: 0.69 -> 0.40 -> 0.18 -> 0.66, and one where
    # the second hazy date is only 0.14 below the first.
    s = series({1: [0.69, 0.40, 0.18, 0.66, 0.64], 47: [0.66, 0.32, 0.18, 0.67, 0.69]})
    assert flags(s, 1) == flags(s, 47) == [False, True, True, False, False]


def test_a_low_spell_of_three_dates_is_a_dip_but_four_are_a_real_change():
    three = [0.70, 0.30, 0.25, 0.30, 0.70]
    s = series({"three": three, "plateau": [0.70, 0.30, 0.30, 0.70, 0.70]})
    assert flags(s, "three") == [False, True, True, True, False]
    assert flags(s, "plateau") == [False, True, True, False, False]
    four = series({"four": [0.70, 0.30, 0.25, 0.30, 0.30, 0.70]}, dates=[*DATES, "2015-09-19"])
    assert not any(flags(four, "four"))


def test_dips_within_the_threshold_and_steady_declines_are_not_flagged():
    s = series(
        {
            "small dip": [0.70, 0.60, 0.71, 0.70, 0.69],  # 0.10 below both: within 0.15
            "ripening": [0.80, 0.70, 0.55, 0.40, 0.30],
            "failing": [0.80, 0.80, 0.80, 0.80, 0.40],  # the last date has no later neighbour
            "early": [0.30, 0.80, 0.80, 0.80, 0.80],  # nor the first an earlier one
        }
    )
    for fid in ("small dip", "ripening", "failing", "early"):
        assert not any(flags(s, fid)), fid


def test_dates_without_enough_valid_data_are_neither_flagged_nor_neighbours():
    # Date 2 is mostly masked (valid 0.2): the dip at date 3 is judged against dates 1 and 4.
    s = series({7: [0.70, 0.05, 0.30, 0.72, 0.70]}, valid={7: [1, 0.2, 1, 1, 1]})
    assert flags(s, 7) == [False, False, True, False, False]


def test_change_skips_cloud_suspect_dates():
    s = series({1: [0.69, 0.66, 0.64, 0.20, 0.62], 2: [0.8, 0.8, 0.8, 0.8, 0.5]})
    change = field_change(s, CONFIG).set_index("field_id")
    # field 1: date 4 is a dip; the last clear pair is dates 3 and 5
    assert change.loc[1, "ndvi_change"] == pytest.approx(0.62 - 0.64)
    assert (change.loc[1, "previous_date"], change.loc[1, "last_date"]) == (DATES[2], DATES[4])
    assert change.loc[2, "ndvi_change"] == pytest.approx(-0.3)
    assert change.loc[2, "previous_date"] == DATES[3]


def test_one_clear_date_gives_no_change():
    s = series({3: [0.7, 0.7, 0.7, 0.7, 0.7]}, valid={3: [0.1, 0.1, 0.1, 0.1, 0.9]})
    row = field_change(s, CONFIG).set_index("field_id").loc[3]
    assert np.isnan(row["ndvi_change"]) and row["previous_date"] is None


def test_threshold_is_configurable():
    s = series({1: [0.70, 0.60, 0.71, 0.70, 0.69]})
    loose = cloud_suspect(s, TimeSeriesConfig(cloud_dip=0.05))
    assert s.loc[loose, "date"].tolist() == [DATES[1]]

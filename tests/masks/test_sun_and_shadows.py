"""Solar position against closed-form cases; shadow shifts and projection by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agrivision.masks.shadows import CLEAR, CLOUD, SHADOW, dark, project_block, shadow_shifts
from agrivision.masks.sun import sun_position


def test_noon_elevation_is_ninety_minus_latitude_plus_declination():
    # June solstice 2024 (declination +23.44): at solar noon on the Greenwich meridian the
    # sun stands due south at 90 - lat + 23.44 (UTC noon is solar noon there within 2 min).
    az, el = sun_position(dt.datetime(2024, 6, 20, 12, 2), 0.0, 52.0)
    assert el == pytest.approx(90 - 52 + 23.44, abs=0.3)
    assert az == pytest.approx(180, abs=1.0)
    # Equinox on the equator: overhead at noon, due east at sunrise.
    _, el = sun_position(dt.datetime(2024, 3, 20, 12, 7), 0.0, 0.0)
    assert el == pytest.approx(90, abs=1.0)
    az, el = sun_position(dt.datetime(2024, 3, 20, 6, 7), 0.0, 0.0)
    assert az == pytest.approx(90, abs=1.0) and el == pytest.approx(0, abs=1.0)


def test_longitude_shifts_solar_time_and_date_only_means_1030_solar():
    # 15 degrees east is one hour earlier in UTC for the same sun.
    assert sun_position(dt.datetime(2024, 6, 20, 11, 2), 15.0, 52.0) == pytest.approx(
        sun_position(dt.datetime(2024, 6, 20, 12, 2), 0.0, 52.0), abs=0.05
    )
    morning = sun_position(dt.datetime(2024, 6, 20, 10, 30), 0.0, 52.0)
    assert sun_position(dt.datetime(2024, 6, 20), 0.0, 52.0) == pytest.approx(morning, abs=1e-9)
    assert 120 < morning[0] < 160  # south-east before noon


def test_shadow_shifts_point_away_from_the_sun():
    # Sun due south at 45 degrees: a 1 km cloud shadows 1 km north, 10 pixels up at 100 m.
    assert shadow_shifts(180.0, 45.0, (1000.0, 1000.0), 100.0) == [(-10, 0)]
    # Sun in the east: shadows fall west; heights 0.5..1 km give every shift in between.
    shifts = shadow_shifts(90.0, 45.0, (500.0, 1000.0), 100.0)
    assert shifts == [(0, -c) for c in range(5, 11)]


def test_project_block_marks_candidates_outside_clouds():
    cloud = np.zeros((6, 6), np.uint8)
    cloud[4:6, 2:4] = 1
    codes = project_block(cloud, [(-2, 0), (-3, 0)])
    expected = np.zeros((6, 6), np.uint8)
    expected[1:4, 2:4] = SHADOW
    expected[4:6, 2:4] = CLOUD  # the cloud hides its own shadow
    np.testing.assert_array_equal(codes, expected)
    assert CLEAR == 0
    nir = np.array([0.1, 0.1, 0.3, np.nan])
    swir = np.array([0.05, 0.2, 0.05, 0.05])
    np.testing.assert_array_equal(dark(nir, swir, 0.15, 0.12), [True, False, False, False])

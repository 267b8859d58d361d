"""Rates by rank: fields with different numbers of zones, and the rate colours agree."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from agrivision.errors import ConfigError
from agrivision.health.prescription import parse_rates, prescription
from agrivision.report.palette import zone_colours, zone_shade


@pytest.fixture
def mixed():
    """Field A: one zone; B: two; C: three; D: five (each zone a 1 ha square)."""
    rows = [("A", 1, 1), ("B", 1, 2), ("B", 2, 2), ("C", 1, 3), ("C", 2, 3), ("C", 3, 3)]
    rows += [("D", k, 5) for k in range(1, 6)]
    return gpd.GeoDataFrame(
        {"field_id": [r[0] for r in rows], "zone": [r[1] for r in rows],
         "zones_n": [r[2] for r in rows], "area_ha": 1.0},
        geometry=[shapely.box(i * 100, 0, i * 100 + 100, 100) for i in range(len(rows))],
        crs="EPSG:32633",
    )  # fmt: skip


def test_a_list_of_rates_is_read_by_rank_in_each_field(mixed):
    rx = prescription(mixed, parse_rates("150,140,120,100,90"))
    rate = {(f, z): r for f, z, r in zip(rx.field_id, rx.zone, rx.rate, strict=True)}
    assert rate[("A", 1)] == 120.0  # a uniform field: the middle rate, not the lowest zone's
    assert (rate[("B", 1)], rate[("B", 2)]) == (150.0, 90.0)  # low and high ends
    assert [rate[("C", k)] for k in (1, 2, 3)] == [150.0, 120.0, 90.0]
    assert [rate[("D", k)] for k in range(1, 6)] == [150.0, 140.0, 120.0, 100.0, 90.0]
    assert rx.field_prod[rx.field_id == "C"].iloc[0] == pytest.approx(360.0)


def test_rates_by_zone_number_and_wrong_lengths(mixed):
    three = mixed[mixed.field_id == "C"]
    rx = prescription(three, parse_rates("3:90,1:150,2:120"))
    assert rx.rate.tolist() == [150.0, 120.0, 90.0]
    with pytest.raises(ConfigError, match="3 rates, but the fields of the zones file have up to 5"):
        prescription(mixed, parse_rates("140,120,100"))
    with pytest.raises(ConfigError, match=r"rates for zones \[1, 2\], but the zones file has"):
        prescription(three, parse_rates("1:140,2:120"))
    # without zones_n a field's number of zones is its highest zone
    b_and_c = mixed[mixed.field_id.isin(["B", "C"])].drop(columns="zones_n")
    rx = prescription(b_and_c, parse_rates("140,120,100"))
    assert rx.rate.tolist() == [140.0, 100.0, 140.0, 120.0, 100.0]


def test_zone_colours_follow_the_rank_like_the_rates(mixed):
    shade = zone_shade(mixed.zone, mixed.zones_n)
    colours = zone_colours()
    colour = {(f, z): colours[s] for f, z, s in zip(mixed.field_id, mixed.zone, shade, strict=True)}
    red, green, middle = colours[1], colours[len(colours)], colour[("C", 2)]
    assert colour[("B", 1)] == colour[("C", 1)] == colour[("D", 1)] == red
    assert colour[("B", 2)] == colour[("C", 3)] == colour[("D", 5)] == green  # 2 of 2 = 5 of 5
    assert colour[("A", 1)] == colour[("D", 3)] == middle  # one zone: the neutral middle
    assert len({red, green, middle, colour[("D", 2)], colour[("D", 4)]}) == 5

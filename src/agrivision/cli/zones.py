"""Management-zone commands: ``zones`` (polygons per field) and ``prescription`` (rates)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
import geopandas as gpd
import pyogrio

from agrivision.cli.fields import fields_option, fields_over
from agrivision.cli.options import open_from_options, scene_options, zone_count
from agrivision.errors import FieldsError
from agrivision.fields.config import TimeSeriesConfig
from agrivision.fields.timeseries import clear_dates, field_series
from agrivision.health import zones as make_zones
from agrivision.health.prescription import SUFFIXES, parse_rates, prescription, write_prescription
from agrivision.health.zones import MIN_GAIN, MIN_ZONE_HA
from agrivision.indices import compute
from agrivision.io.vector import write_vector


@click.command()
@scene_options
@fields_option(required=True)
@click.option(
    "-n",
    "--zones",
    "n",
    type=zone_count,
    default="3",
    show_default=True,
    help="Zones per field (2..10), or 'auto' (2..6 by variance reduction).",
)
@click.option("-i", "--index", "name", default="NDVI", show_default=True)
@click.option(
    "--method", type=click.Choice(["quantile", "kmeans"]), default="quantile", show_default=True
)
@click.option(
    "--smooth",
    type=click.IntRange(0, 25),
    default=3,
    show_default=True,
    help="Majority-filter window in pixels (applied twice; 0: none).",
)
@click.option(
    "--min-area-ha",
    type=click.FloatRange(min=0),
    default=MIN_ZONE_HA,
    show_default=True,
    help="Minimum zone area; smaller patches merge into a neighbour.",
)
@click.option(
    "--working-width",
    type=click.FloatRange(min=0, min_open=True),
    help="Machine working width (m): the minimum zone area is its square.",
)
@click.option(
    "--min-gain",
    type=click.FloatRange(0, 1),
    default=MIN_GAIN,
    show_default=True,
    help="With -n auto: variance share one more zone must explain.",
)
@click.option(
    "--season",
    is_flag=True,
    help="Productivity zones from every clear date (index / field median, averaged).",
)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="Season: first date.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Season: last date.")
@click.option("-o", "--output", required=True, help="OUT.geojson | .gpkg | .parquet | .fgb")
def zones(
    fields_path: str, n: int | str, name: str, method: str, smooth: int, min_area_ha: float,
    working_width: float | None, min_gain: float, season: bool, start: dt.datetime | None,
    end: dt.datetime | None, output: str, **opts: Any,
) -> None:  # fmt: skip
    """Contiguous management zones per field, from the last date or a season."""
    scene = open_from_options(**opts)
    fields = fields_over(fields_path, scene)
    indices = compute(scene, [name])
    index = indices[name]
    usable = None
    if "time" in index.dims and season:
        indices = indices.sel(time=slice(start, end))
        index = indices[name]
        config = TimeSeriesConfig(index=name)
        usable = clear_dates(field_series(fields, indices, config), config)
    elif "time" in index.dims:
        index = index.isel(time=-1)
    min_area = working_width**2 / 1e4 if working_width else min_area_ha
    out = make_zones(
        index, fields, usable=usable, n=n, method=method, smooth=smooth,
        min_area_ha=min_area, min_gain=min_gain,
    )  # fmt: skip
    write_vector(out, output)
    click.echo(f"wrote {len(out)} zone polygons of {out['field_id'].nunique()} fields to {output}")


@click.command()
@click.argument("zones_path")
@click.option(
    "--rates",
    required=True,
    help="Rates, lowest zone first: 140,120,100 (a field with fewer zones takes them by "
    "rank, a single zone the middle one), or by zone number: 1:140,2:120,3:100.",
)
@click.option("--unit", default="kg/ha", show_default=True, help="Unit of the rates.")
@click.option("--layer", help="Layer of the zones file (e.g. 'zones' of report.gpkg).")
@click.option("-o", "--output", required=True, help=f"OUT{' | '.join(SUFFIXES)}")
def prescription_command(
    zones_path: str, rates: str, unit: str, layer: str | None, output: str
) -> None:
    """Prescription map: a rate per management zone, with the product per field."""
    rate_of = parse_rates(rates)
    try:
        table = gpd.read_file(zones_path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise FieldsError(
            f"cannot read the zones ({str(exc).splitlines()[0]})", source=zones_path,
            fix="give the zones file of 'agrivision zones' or report.gpkg with --layer zones",
        ) from None  # fmt: skip
    rx = prescription(table, rate_of, unit=unit, source=zones_path)
    write_prescription(rx, output)
    total = rx["product"].sum()
    amount = unit[:-3] if unit.endswith("/ha") else f"{unit} x ha"
    click.echo(
        f"wrote {len(rx)} zone polygons of {rx['field_id'].nunique()} fields to {output}: "
        f"{total:.1f} {amount} in all"
    )


prescription_command.name = "prescription"

"""``agrivision search``: scenes of a STAC API over the fields, clear over the fields."""

from __future__ import annotations

import contextlib

import click

from agrivision.cli.options import split_bands
from agrivision.io.atomic import check_writable
from agrivision.io.fields import read_fields
from agrivision.io.remote import remote_reads
from agrivision.runtime.progress import local_progress_bar
from agrivision.stac import DEFAULT_BANDS, search_items
from agrivision.stac.search import REASON


@click.command()
@click.option("--stac", "url", required=True, help="STAC API root URL (see README: Get imagery).")
@click.option("--collection", required=True, help="Collection id, e.g. sentinel-2-l2a.")
@click.option("--fields", "fields_path", required=True, help="Field boundaries (any CRS).")
@click.option("--datetime", "when", required=True, help="START/END, e.g. 2024-04-01/2024-09-30.")
@click.option(
    "--max-cloud",
    default=20.0,
    show_default=True,
    help="Most cloud/cirrus/shadow (%) over a field for it to be clear; a date is kept when "
    "at least one field is clear.",
)
@click.option(
    "--max-scene-cloud",
    default=95.0,
    show_default=True,
    help="Scenes more cloudy than this (eo:cloud_cover, %) are dropped unread.",
)
@click.option(
    "--bands",
    help=f"Reflectance bands to keep, common names (default {','.join(DEFAULT_BANDS)}); the "
    "quality band is always kept.",
)
@click.option("--sensor", help="Sensor profile (default: detected from the items).")
@click.option("--limit", default=500, show_default=True, help="Most items taken from the API.")
@click.option("-o", "--output", required=True, help="STAC ItemCollection to write (.json).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def search(
    url: str,
    collection: str,
    fields_path: str,
    when: str,
    max_cloud: float,
    max_scene_cloud: float,
    bands: str | None,
    sensor: str | None,
    limit: int,
    output: str,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Search a STAC API for the scenes over --fields in --datetime that are clear over the
    fields; write them (with the reason each was kept or dropped) to -o ITEMS.json, for
    `agrivision report ITEMS.json`."""
    check_writable(output, overwrite=overwrite)  # before any request, not after
    fields = read_fields(fields_path)
    with remote_reads(), contextlib.nullcontext() if quiet else local_progress_bar():
        result = search_items(
            url, collection, fields, when, max_cloud=max_cloud, max_scene_cloud=max_scene_cloud,
            bands=split_bands(bands) or DEFAULT_BANDS, sensor=sensor, limit=limit,
        )  # fmt: skip
    path = result.write(output, overwrite=overwrite)
    for item in result.kept:
        click.echo(f"  {item['id']} {item['properties'][REASON]}")
    for dropped in result.dropped:
        click.echo(f"  {dropped['id']} dropped: {dropped['reason']}")
    click.echo(f"kept {len(result.kept)} of {len(result.kept) + len(result.dropped)} items: {path}")

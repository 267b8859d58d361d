"""``agrivision info``: what a set of sources holds."""

from __future__ import annotations

import json

import click
import numpy as np

from agrivision.cli.options import open_from_options, scene_options
from agrivision.masks import valid_fraction
from agrivision.sensors import list_profiles


@click.command()
@scene_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--no-valid", is_flag=True, help="Skip the valid fraction (reads all pixels).")
def info(as_json: bool, no_valid: bool, **opts) -> None:
    """Describe SOURCES: sensor, mask method, bands, grid, CRS, dates and valid fraction."""
    scene = open_from_options(**opts)
    t = scene.rio.transform()
    facts = {
        "sensor": scene.attrs.get("sensor"),
        "mask": scene.attrs.get("mask"),
        "bands": [str(v) for v in scene.data_vars],
        "crs": scene.rio.crs.to_string(),
        "shape": [int(scene.sizes["y"]), int(scene.sizes["x"])],
        "resolution": [abs(t.a), abs(t.e)],
        "bounds": list(scene.rio.bounds()),
        # acquisitions are grouped by day, so a day is the honest resolution
        "dates": [str(np.datetime_as_string(d, "D")) for d in scene["time"].values]
        if "time" in scene.dims
        else ([str(scene.attrs["datetime"])[:10]] if "datetime" in scene.attrs else []),
        "chunks": [int(c) for c in next(iter(scene.data_vars.values())).data.chunksize[-2:]],
    }
    if not no_valid:
        vf = valid_fraction(scene).compute().values
        facts["valid_fraction"] = [round(float(v), 4) for v in np.atleast_1d(vf)]
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        click.echo(f"{key:>15}: {shown}")


@click.command("sensors")
def sensors() -> None:
    """List the known sensor profiles."""
    for name in list_profiles():
        click.echo(name)

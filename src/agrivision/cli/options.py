"""Options shared by every command that opens imagery."""

from __future__ import annotations

from collections.abc import Callable

import click
import xarray as xr

from agrivision.io.scene import open_scene


def scene_options(func: Callable) -> Callable:
    """Add SOURCE... and the options of :func:`agrivision.open_scene` to a command."""
    decorators = [
        click.argument("sources", nargs=-1, required=True),
        click.option("--sensor", help="Sensor profile name or YAML path (default: detected)."),
        click.option(
            "--bands", help="Comma-separated band names of multi-band files, in file order."
        ),
        click.option(
            "--resolution", type=float, help="Target pixel size in CRS units (default: finest)."
        ),
        click.option("--crs", help="Target CRS, e.g. EPSG:32633 (default: first source's)."),
        click.option(
            "--chunks", type=int, default=1024, show_default=True, help="Dask chunk edge (px)."
        ),
        click.option("--no-mask", is_flag=True, help="Keep pixels flagged by quality bands."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def open_from_options(
    sources: tuple[str, ...],
    sensor: str | None,
    bands: str | None,
    resolution: float | None,
    crs: str | None,
    chunks: int,
    no_mask: bool,
    select: list[str] | None = None,
) -> xr.Dataset:
    """Open a Scene from the parsed values of :func:`scene_options`."""
    return open_scene(
        list(sources),
        sensor=sensor,
        bands=[b.strip() for b in bands.split(",")] if bands else None,
        select=select,
        resolution=resolution,
        crs=crs,
        chunks=chunks,
        mask=not no_mask,
    )

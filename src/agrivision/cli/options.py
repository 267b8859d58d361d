"""Options shared by every command that opens imagery or computes."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click
import xarray as xr

from agrivision.io.scene import open_scene
from agrivision.runtime import compute_context


def runtime_options(func: Callable) -> Callable:
    """Add ``--scheduler``/``--workers`` and run the command inside
    :func:`agrivision.runtime.compute_context` (``DASK_SCHEDULER_ADDRESS`` is honoured)."""

    @functools.wraps(func)
    def run(*args, scheduler: str | None, workers: int | None, **kwargs):
        with compute_context(scheduler, workers=workers):
            return func(*args, **kwargs)

    run = click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="Start a local dask cluster of N worker processes.",
    )(run)
    return click.option(
        "--scheduler",
        help="dask.distributed scheduler address, e.g. tcp://host:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else this machine's threads).",
    )(run)


def scene_options(func: Callable) -> Callable:
    """Add SOURCE..., the options of :func:`agrivision.open_scene` and
    :func:`runtime_options` to a command."""
    func = runtime_options(func)
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

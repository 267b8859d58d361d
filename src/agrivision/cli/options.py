"""Options shared by every command that opens imagery or computes."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click
import xarray as xr

from agrivision.io.scene import open_scene
from agrivision.masks import METHODS
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


def source_options(func: Callable) -> Callable:
    """Add ``--sensor``, ``--bands``, ``--mask`` and ``--no-mask``: how every command that
    reads imagery names its bands and masks clouds (see :func:`mask_choice`)."""
    decorators = [
        click.option("--sensor", help="Sensor profile name or YAML path (default: detected)."),
        click.option(
            "--bands", help="Comma-separated band names of multi-band files, in file order."
        ),
        click.option(
            "--mask",
            metavar="|".join(METHODS),
            help="Clouds and shadows (default auto): the quality band (SCL, QA_PIXEL, Fmask) if any, "
            "else the sensor's detector (s2cloudless, spectral test, none for drones); or "
            "force one; off keeps every pixel.",
        ),
        click.option("--no-mask", is_flag=True, help="Same as --mask off."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def grid_options(func: Callable) -> Callable:
    """Add ``--resolution``, ``--crs`` and ``--chunks`` (the target grid of the scene)."""
    decorators = [
        click.option(
            "--resolution", type=float, help="Target pixel size in CRS units (default: finest)."
        ),
        click.option("--crs", help="Target CRS, e.g. EPSG:32633 (default: first source's)."),
        click.option(
            "--chunks", type=int, default=1024, show_default=True, help="Dask chunk edge (px)."
        ),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def scene_options(func: Callable) -> Callable:
    """Add SOURCE..., :func:`source_options`, :func:`grid_options` and
    :func:`runtime_options` to a command."""
    func = runtime_options(grid_options(source_options(func)))
    return click.argument("sources", nargs=-1, required=True)(func)


def mask_choice(mask: str | None, no_mask: bool) -> str | None:
    """The mask method from ``--mask`` and ``--no-mask`` (validated by the API); None when
    neither was given (the config's or the API's default, ``auto``, applies)."""
    if no_mask:
        return "off"
    return mask.strip().lower() if mask else None


def split_bands(bands: str | None) -> list[str] | None:
    """``--bands a,b,c`` as a list (None when not given)."""
    return [b.strip() for b in bands.split(",")] if bands else None


def open_from_options(
    sources: tuple[str, ...],
    sensor: str | None,
    bands: str | None,
    resolution: float | None,
    crs: str | None,
    chunks: int,
    mask: str | None,
    no_mask: bool,
    select: list[str] | None = None,
) -> xr.Dataset:
    """Open a Scene from the parsed values of :func:`scene_options`."""
    return open_scene(
        list(sources),
        sensor=sensor,
        bands=split_bands(bands),
        select=select,
        resolution=resolution,
        crs=crs,
        chunks=chunks,
        mask=mask_choice(mask, no_mask) or "auto",
    )


def zone_count(value: str) -> int | str:
    """``--zones``/``-n``: a number of zones in 2..10, or ``auto``."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number nor 'auto'") from None
    if not 2 <= n <= 10:
        raise click.BadParameter(f"{n} is not in 2..10")
    return n

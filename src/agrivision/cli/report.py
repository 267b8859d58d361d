"""``agrivision report`` and ``agrivision demo``: the per-field crop-health report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from agrivision.cli.options import mask_choice, source_options, split_bands, zone_count
from agrivision.cli.warn import print_warning
from agrivision.io.fields import read_fields
from agrivision.io.remote import reads_remote, remote_reads
from agrivision.io.sources import is_stac
from agrivision.report.config import load_report_config
from agrivision.report.run import run_report
from agrivision.stac.cache import cache_windows


def _configure_logging(level: str, quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else getattr(logging, level.upper()),
        format="%(levelname)s %(name)s: %(message)s",
    )


@click.command()
@click.argument("sources", nargs=-1)
@click.option(
    "--fields", "fields_path", help="Field boundaries (GeoJSON, GPKG, SHP, Parquet, FGB)."
)
@click.option(
    "--crop-column",
    help="Column of the fields' crop (peer groups); default: a known one (fiboa crop:code, "
    "LPIS names), else all fields are one group.",
)
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), help="Output folder.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Run config YAML.")
@click.option(
    "--model",
    help="U-Net checkpoint folder: health classes from the model, not the "
    "index rules (class names mapped as in agrivision.segment.model_classes).",
)
@click.option("--grid-cell", "grid_cell", type=float,
              help="With --model: class shares also per square cell of this edge (m) inside "
              "each field (cells.geojson).")  # fmt: skip
@click.option("-i", "--index", "indices", multiple=True, help="Index (repeat); overrides config.")
@source_options
@click.option("--scheduler", help="dask.distributed scheduler address (tcp://host:8786).")
@click.option("--workers", type=int, help="Start a local cluster of N worker processes.")
@click.option(
    "--zones", "n_zones", type=zone_count, help="Management zones per field (2..10), or 'auto'."
)
@click.option(
    "--map-tiles",
    help="Basemap of report.html: an XYZ tile URL (https://.../{z}/{x}/{y}.png); "
    "without it the page makes no network request.",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False),
    help="Keep the fields' windows of remote imagery as local COGs in DIR, and reuse them.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing report outputs.")
@click.option("--print-config", is_flag=True, help="Print the effective config and exit.")
@click.option("--quiet", is_flag=True, help="No progress display, warnings only.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))  # fmt: skip
def report(
    sources: tuple[str, ...],
    fields_path: str | None,
    crop_column: str | None,
    outdir: str | None,
    config_path: str | None,
    model: str | None,
    grid_cell: float | None,
    indices: tuple[str, ...],
    sensor: str | None,
    bands: str | None,
    mask: str | None,
    no_mask: bool,
    scheduler: str | None,
    workers: int | None,
    n_zones: int | str | None,
    map_tiles: str | None,
    cache_dir: str | None,
    overwrite: bool,
    print_config: bool,
    quiet: bool,
    log_level: str,
) -> None:
    """Per-field crop-health report of SOURCES over --fields into -o OUTDIR."""
    overrides = {
        "indices": list(indices) or None, "scene.sensor": sensor,
        "scene.bands": split_bands(bands), "scene.mask": mask_choice(mask, no_mask),
        "runtime.scheduler": scheduler,
        "runtime.workers": workers, "zones.n": n_zones, "model": model,
        "fields.crop_column": crop_column, "output.map_tiles": map_tiles,
        "output.grid_cell_m": grid_cell,
    }  # fmt: skip
    config = load_report_config(config_path, overrides)
    if print_config:
        click.echo(json.dumps(config.model_dump(mode="json"), indent=2))
        return
    if not sources or not fields_path or not outdir:
        raise click.UsageError("report needs SOURCE..., --fields FILE and -o OUTDIR")
    _configure_logging(log_level, quiet)
    with remote_reads(reads_remote(sources)):
        if cache_dir:
            fields = read_fields(fields_path, layer=config.fields.layer)
            sources = tuple(
                str(cache_windows(s, fields, cache_dir)) if is_stac(s) else s for s in sources
            )
        result = run_report(
            sources, fields_path, outdir, config=config, overwrite=overwrite, progress=not quiet
        )
    click.echo(f"wrote {len(result.table)} fields to {Path(outdir)}; open {result.html}")
    for w in result.warnings:
        print_warning(w)


@click.command()
@click.option("-o", "--output", "outdir", default="demo-output", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic scene.")
@click.option("--size", default=768, show_default=True, help="Scene edge in pixels (10 m).")
def demo(outdir: str, seed: int, size: int) -> None:
    """Generate a synthetic two-date Sentinel-2 scene with fields and report on it."""
    from agrivision.synthetic import write_synthetic

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    files = write_synthetic(
        out / "data", seed=seed, shape=(size, size), dates=["2024-06-01", "2024-06-21"]
    )
    assert files.fields is not None  # write_synthetic always writes the fields
    result = run_report([str(files.items)], files.fields, out / "report", overwrite=True)
    click.echo(f"demo report: {result.html.resolve()}")

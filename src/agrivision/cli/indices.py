"""``agrivision indices``: spectral indices to a Cloud-Optimized GeoTIFF, or the catalogue."""

from __future__ import annotations

import click

from agrivision.cli.options import grid_options, open_from_options, runtime_options, source_options
from agrivision.errors import AgrivisionError
from agrivision.indices import compute, list_indices
from agrivision.io.cog import DEFAULT_COMPRESS, to_cog


@click.command()
@click.argument("sources", nargs=-1)
@click.option("-i", "--index", "names", multiple=True, help="Index name (repeat for several).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output COG (.tif).")
@click.option("--list", "show_list", is_flag=True, help="List the catalogue instead.")
@click.option("--search", help="With --list: only indices whose name or description match.")
@source_options
@grid_options
@click.option(
    "--compress",
    type=click.Choice(["zstd", "deflate", "lzw", "none"], case_sensitive=False),
    default=DEFAULT_COMPRESS,
    show_default=True,
    help="COG compression: zstd is fastest at the same size (GDAL >= 2.3, QGIS 3); "
    "deflate for the oldest readers.",
)
@click.option("--overwrite/--no-overwrite", default=True, show_default=True)
@runtime_options
def indices(
    sources: tuple[str, ...],
    names: tuple[str, ...],
    output: str | None,
    show_list: bool,
    search: str | None,
    compress: str,
    overwrite: bool,
    **opts,
) -> None:
    """Compute spectral indices of SOURCES into OUTPUT (one band per index), or --list them."""
    if show_list:
        for idx in list_indices(search):
            click.echo(f"{idx.name:<14} {idx.long_name}  [{', '.join(idx.bands)}]")
        return
    if not sources or not names or not output:
        raise AgrivisionError(
            "indices needs SOURCE..., at least one -i NAME and -o OUT.tif",
            fix="e.g. agrivision indices scene.tif -i NDVI -o ndvi.tif",
        )
    # Opening is lazy: only the bands the indices use are ever read.
    scene = open_from_options(sources, **opts)
    result = compute(scene, list(names))
    path = to_cog(result, output, compress=compress, overwrite=overwrite)
    click.echo(f"wrote {path} ({', '.join(map(str, result.data_vars))})")

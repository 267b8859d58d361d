"""``agrivision screen``: quality table of an image collection, and the kept scenes."""

from __future__ import annotations

import click

from agrivision.cli.options import mask_choice, source_options, split_bands
from agrivision.config import validate
from agrivision.io.atomic import atomic_path
from agrivision.screening import ScreenConfig, load_screen_config, write_selection
from agrivision.screening import screen as screen_collection


@click.command()
@click.argument("sources", nargs=-1, required=True)
@source_options
@click.option("--fields", "fields_path", help="Field boundaries: adds field_valid_fraction.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Screening config YAML (see config/screen-default.yaml).",
)
@click.option("--max-pixels", type=int, help="Pixels read per band and scene (decimated).")
@click.option("-o", "--output", required=True, help="Table of scenes (CSV).")
@click.option(
    "--select",
    "select_path",
    help="Also write the kept scenes: OUT.json (STAC ItemCollection) or OUT.txt.",
)
@click.option("--overwrite/--no-overwrite", default=True, show_default=True)
def screen(
    sources: tuple[str, ...],
    fields_path: str | None,
    config_path: str | None,
    max_pixels: int | None,
    output: str,
    select_path: str | None,
    overwrite: bool,
    sensor: str | None,
    bands: str | None,
    mask: str | None,
    no_mask: bool,
) -> None:
    """Screen SOURCES: valid, cloud, shadow, nodata and saturation fractions, sharpness,
    duplicates and a keep column, one row per scene and date. Scenes without a quality band
    get the sensor's automatic cloud/shadow mask (``--mask``, as for every command)."""
    config = load_screen_config(config_path)
    method = mask_choice(mask, no_mask)
    if max_pixels is not None or method is not None:
        data = config.model_dump()
        if max_pixels is not None:
            data["read"]["max_pixels"] = max_pixels
        if method is not None:
            data["mask"]["method"] = method
        config = validate(ScreenConfig, data, "--max-pixels/--mask")
    fields = None
    if fields_path:
        from agrivision.io.fields import read_fields

        fields = read_fields(fields_path)
    result = screen_collection(
        list(sources), fields=fields, config=config, sensor=sensor, bands=split_bands(bands)
    )
    table = result.table
    with atomic_path(output, overwrite=overwrite) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    n_dup = int((table["duplicate_of"] != "").sum())
    click.echo(
        f"wrote {output}: {len(table)} scenes, {int(table['keep'].sum())} kept, {n_dup} duplicates"
    )
    if select_path:
        path, written, skipped = write_selection(result, select_path, overwrite=overwrite)
        extra = f" ({skipped} single dates of multi-date files left out)" if skipped else ""
        click.echo(f"wrote {path}: {written} kept scenes{extra}")

"""Field analytics commands: ``stats``, ``classify``, ``vectorize``."""

from __future__ import annotations

from typing import Any, overload

import click
import geopandas as gpd
import rioxarray
import xarray as xr

from agrivision.cli.options import open_from_options, runtime_options, scene_options
from agrivision.errors import SourceError
from agrivision.fields.vectorize import vectorize as vectorize_classes
from agrivision.fields.zonal import DEFAULT_STATS, zonal_stats
from agrivision.health import DEFAULT_SCHEMA, HealthRules
from agrivision.health import classify as classify_health
from agrivision.indices import compute
from agrivision.io.cog import to_cog
from agrivision.io.fields import area_ha, check_overlap, read_fields
from agrivision.io.fields import crop_column as find_crop_column
from agrivision.io.vector import write_vector


def fields_option(required: bool):
    return click.option(
        "--fields", "fields_path", required=required,
        help="Field boundaries (GeoJSON, GPKG, SHP/zip, Parquet, FlatGeobuf).",
    )  # fmt: skip


@overload
def fields_over(fields_path: str, raster: Any) -> gpd.GeoDataFrame: ...
@overload
def fields_over(fields_path: str | None, raster: Any) -> gpd.GeoDataFrame | None: ...
def fields_over(fields_path: str | None, raster: Any) -> gpd.GeoDataFrame | None:
    """The fields in the raster's CRS, refused when none overlaps it."""
    if fields_path is None:
        return None
    fields = read_fields(fields_path, to_crs=raster.rio.crs)
    check_overlap(fields, raster, source=fields_path)
    return fields


@click.command()
@scene_options
@fields_option(required=True)
@click.option("-i", "--index", "names", multiple=True, default=("NDVI",), show_default=True)
@click.option("--crop-column", help="Column of the fields' crop, copied as 'crop'.")
@click.option("-o", "--output", required=True, help="OUT.geojson | .gpkg | .parquet | .csv")
def stats(
    fields_path: str, names: tuple[str, ...], crop_column: str | None, output: str, **opts
) -> None:
    """Exact per-field (and per-date) statistics of indices over --fields."""
    scene = open_from_options(**opts)
    fields = fields_over(fields_path, scene)
    crop = find_crop_column(fields, crop_column, source=fields_path)
    indices = compute(scene, list(names))
    table = zonal_stats(indices, fields, stats=DEFAULT_STATS)
    by_id = fields.assign(area_ha=area_ha(fields)).set_index("field_id").loc[table["field_id"]]
    table.insert(1, "area_ha", by_id["area_ha"].to_numpy())
    if crop is not None:
        table.insert(1, "crop", by_id[crop].to_numpy())
    geometry = by_id.geometry.to_numpy()
    out = gpd.GeoDataFrame(table, geometry=geometry, crs=fields.crs)
    write_vector(out, output)
    click.echo(f"wrote {len(out)} rows to {output}")


@click.command()
@scene_options
@fields_option(required=False)
@click.option("-o", "--output", required=True, help="Class raster (COG .tif).")
def classify(fields_path: str | None, output: str, **opts) -> None:
    """Rule-based crop-health classes (last date) as a COG with colour table."""
    scene = open_from_options(**opts)
    fields = fields_over(fields_path, scene)
    indices = compute(
        scene, ["NDVI", "NDRE"] if "rededge1" in scene or "rededge" in scene else ["NDVI"]
    )
    if "time" in indices.dims:
        indices = indices.isel(time=-1)
    classes = classify_health(indices, fields, rules=HealthRules())
    to_cog(
        classes,
        output,
        colormap=DEFAULT_SCHEMA.colormap,
        class_names=DEFAULT_SCHEMA.names,
        nodata=0,
    )
    click.echo(f"wrote {output}")


@click.command()
@click.argument("classes_path")
@fields_option(required=False)
@click.option("--min-area-ha", type=float, default=0.0, show_default=True)
@click.option("--simplify", type=float, help="Simplification tolerance in metres.")
@click.option("--classes", "keep", help="Comma-separated class codes to keep (default: all).")
@click.option("-o", "--output", required=True, help="OUT.geojson | .gpkg | .parquet | .csv")
@runtime_options
def vectorize(
    classes_path: str, fields_path: str | None, min_area_ha: float, simplify: float | None,
    keep: str | None, output: str,
) -> None:  # fmt: skip
    """Class raster to polygons (per field with --fields)."""
    from agrivision.io.sources import file_info

    file_info(classes_path)  # clear errors for missing/corrupt/un-georeferenced rasters
    opened = rioxarray.open_rasterio(classes_path, chunks=1024)
    if not isinstance(opened, xr.DataArray):
        raise SourceError("holds several subdatasets, not one class raster", source=classes_path)
    raster = opened.squeeze("band", drop=True)
    fields = fields_over(fields_path, raster)
    polys = vectorize_classes(
        raster, fields, classes_to_keep=[int(c) for c in keep.split(",")] if keep else None,
        class_names=DEFAULT_SCHEMA.labels, min_area_ha=min_area_ha, simplify=simplify,
    )  # fmt: skip
    write_vector(polys, output)
    click.echo(f"wrote {len(polys)} polygons to {output}")

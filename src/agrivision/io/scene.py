"""``open_scene``: any set of raster sources -> one lazy, georeferenced Scene.

Flow: expand sources (files, folders, globs, STAC JSON) -> read headers
(:mod:`agrivision.io.sources`) -> decide the sensor profile -> name every band by its STAC
common name -> choose the target grid -> per band and date: read lazily with rioxarray,
scale to reflectance, put on the grid (odc-geo, dask-aware), mosaic first-valid -> stack
dates -> mask. Only headers are read; every pixel operation is a dask task.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import xarray as xr
from odc.geo.geobox import GeoBox
from rasterio.errors import NotGeoreferencedWarning

from agrivision.errors import BandNotFoundError, MissingCRSError, SourceError
from agrivision.io.alignment import Resampling, crop_to_bounds, target_grid
from agrivision.io.bands import band_assets, band_layers, variable_name
from agrivision.io.pixels import BandReader, assemble, band_on_grid
from agrivision.io.sources import PIXEL_GRID_CRS, BandAsset, expand_sources
from agrivision.limits import check_scene_pixels
from agrivision.masks import MASK_INPUTS, MaskConfig, mask_config, mask_scene
from agrivision.sensors import SensorProfile, load_profile

# odc-geo warps in-memory blocks through rasterio without a geotransform; that is expected.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.warp")

__all__ = ["band_layers", "open_scene"]


def open_scene(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    sensor: str | os.PathLike | SensorProfile | None = None,
    bands: Sequence[str] | None = None,
    select: Sequence[str] | None = None,
    resolution: float | tuple[float, float] | None = None,
    crs: Any = None,
    like: xr.Dataset | xr.DataArray | GeoBox | None = None,
    chunks: int = 1024,
    mask: bool | str | MaskConfig = "auto",
    scale: float | None = None,
    offset: float | None = None,
    resampling: Resampling = None,
    allow_remote: bool | None = None,
    fields: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
) -> xr.Dataset:
    """Open raster sources lazily as one Scene of reflectance bands on one grid.

    Parameters
    ----------
    sources
        A file, folder, glob, STAC Item/ItemCollection JSON, or a list of them. Files of one
        date at several resolutions are put on one grid; overlapping tiles of one date are
        mosaicked (first valid pixel wins, in source order); several dates give a sorted
        ``time`` dimension (date from STAC ``datetime``, GeoTIFF tags or the file name;
        acquisitions of the same calendar day are mosaicked together).
    sensor
        Sensor profile name (see :func:`agrivision.sensors.list_profiles`), YAML path or
        profile. Detected from STAC properties or GeoTIFF tags when omitted.
    bands
        Names (band ids or common names) of the bands of multi-band files, in file order,
        when the files' band descriptions do not say.
    select
        Only these variables (common names or quality-band names); fewer bands are read. The
        bands the mask is made from are read too (on the selected bands' grid), then dropped.
    resolution, crs, like
        Target grid. Default: CRS of the first source, the finest source resolution (in CRS
        units, metres for UTM), the union of all sources, aligned to the finest source's
        pixel edges. ``like`` (a Scene, DataArray or odc-geo ``GeoBox``) pins the grid.
    chunks
        Dask chunk edge in pixels on the target grid; memory is bounded by it.
    mask
        ``"auto"`` (or True): reflectance becomes NaN where the quality bands (SCL, QA_PIXEL,
        Fmask, cloud probability or mask) flag cloud, shadow, cirrus, snow, saturation or
        nodata, or, without a quality band, where the sensor profile's cloud detector
        (s2cloudless, spectral test) finds clouds and their shadows (see
        :mod:`agrivision.masks.auto`). A method name (``"quality"``, ``"s2cloudless"``,
        ``"spectral"``) forces it; a :class:`~agrivision.masks.MaskConfig` also chooses
        categories and detector settings; False or ``"off"`` keeps all pixels.
    scale, offset
        Override the profile's ``reflectance = DN * scale + offset`` (integer data only;
        float data are taken as reflectance unless ``scale`` is given).
    resampling
        GDAL resampling name for all bands, or a mapping variable -> name. Default, for
        reflectance: ``nearest`` onto an equal or finer grid (a 20 m pixel becomes four
        identical 10 m pixels, no invented values) and ``average`` onto a coarser one; for
        quality bands: ``nearest`` onto finer, ``mode`` onto coarser grids.
    allow_remote
        Let a local STAC item or VRT point at remote data (``https://``, ``s3://``...).
        Default: refused unless ``AGRIVISION_ALLOW_REMOTE=1`` (see :mod:`agrivision.limits`);
        remote sources passed directly are always read; the Items that ``agrivision search``
        wrote are read too.
    fields
        Polygons (any CRS): the grid is cut to the window that covers them (one pixel wider,
        on the same pixel edges), so that only the blocks of that window are read, which is
        what makes remote COGs cheap to use.

    Returns
    -------
    xarray.Dataset
        Dask-backed float32 reflectance (0..1, NaN = nodata/masked) named by STAC common name,
        quality bands in their own integer dtype (``auto_mask``: 0 clear, 1 cloud, 2 shadow,
        when a detector ran), dims ``(y, x)`` or ``(time, y, x)``, CRS and transform through
        rioxarray (``.rio.crs``), ``attrs["sensor"]`` and ``attrs["mask"]`` (the method used).

    Raises
    ------
    MaskError
        Unknown mask method, or a forced method the bands cannot support.
    """
    masking = mask_config(mask)
    files = expand_sources(sources)
    profile = load_profile(sensor) if sensor is not None else None
    assets, profile = band_assets(files, profile, bands, allow_remote)
    grid_assets = assets
    if select is not None:
        wanted = set(select)
        grid_assets = [a for a in assets if variable_name(a, profile) in wanted]
        missing = wanted - {variable_name(a, profile) for a in grid_assets}
        if missing:
            raise BandNotFoundError(
                f"sources have no band {sorted(missing)}",
                source=files[0] if len(files) == 1 else f"{len(files)} sources",
                fix="check select= against `agrivision info`",
            )
        # The mask's own bands are read too (on the selected bands' grid) and dropped after.
        helpers = wanted | (set(MASK_INPUTS) if masking is not None else set())
        assets = [a for a in assets if variable_name(a, profile) in helpers]
    geobox = target_grid(grid_assets, resolution=resolution, crs=crs, like=like)
    if fields is not None:
        if fields.crs is None:
            raise MissingCRSError("fields have no CRS", source="fields", fix="set one first")
        geobox = crop_to_bounds(geobox, tuple(fields.total_bounds), fields.crs)
    # A header claiming 10^12 pixels is refused before dask builds a task per chunk.
    check_scene_pixels(geobox.shape, source=files[0] if len(files) == 1 else None)
    # Acquisitions of one calendar day (tiles of one satellite pass) are mosaicked together.
    by_date: dict[dt.date | None, dict[str, list[BandAsset]]] = defaultdict(
        lambda: defaultdict(list)
    )
    sun_props: dict[dt.date | None, Mapping] = {}
    for a in assets:
        by_date[a.date.date() if a.date else None][variable_name(a, profile)].append(a)
        if a.properties:
            sun_props.setdefault(a.date.date() if a.date else None, a.properties)
    first_time = {
        day: min((a.date for g in groups.values() for a in g if a.date), default=None)
        for day, groups in by_date.items()
    }
    if len(by_date) > 1 and None in by_date:
        undated = by_date[None][next(iter(by_date[None]))][0].file.path
        raise SourceError(
            "sources span several dates but this one has no date",
            source=undated,
            fix="add a DATETIME tag or a YYYYMMDD date to the file name",
        )
    reader = BandReader(chunks)
    per_date = []
    for day in sorted(by_date, key=lambda d: d or dt.date.min):
        variables = {
            name: band_on_grid(group, name, profile, geobox, reader, scale, offset, resampling)
            for name, group in by_date[day].items()
        }
        per_date.append((first_time[day], variables))
    scene = assemble(per_date, geobox, chunks)
    scene.attrs.update(
        sensor=profile.name if profile else "unknown",
        sources=[str(f) for f in files],
    )
    scene.attrs.update(_sun_attrs([props for _, props in sorted(sun_props.items(), key=_day)]))
    if masking is None:
        scene.attrs["mask"] = "off"
    else:
        frames = all(a.file.crs == PIXEL_GRID_CRS for a in assets)  # drone frames
        scene = mask_scene(
            scene,
            masking,
            detector="none" if frames else (profile.cloud_mask if profile else None),
            source=files[0] if len(files) == 1 else f"{len(files)} sources",
        )
    if select is not None:
        scene = scene[[v for v in scene.data_vars if v in set(select)]]
    if all(a.file.crs == PIXEL_GRID_CRS for a in assets):  # drone frames without position
        scene = scene.drop_vars("spatial_ref")
        scene.attrs["georeferenced"] = False
        for var in scene.data_vars.values():
            var.encoding.pop("grid_mapping", None)
    return scene


def _day(item: tuple[dt.date | None, Any]) -> dt.date:
    return item[0] or dt.date.min


def _sun_attrs(per_date: list[Mapping]) -> dict[str, Any]:
    """STAC ``view:sun_*`` angles (one per date, or a number for one date) for the shadows."""
    out: dict[str, Any] = {}
    for key in ("view:sun_azimuth", "view:sun_elevation"):
        values = [p[key] for p in per_date if p.get(key) is not None]
        if values and len(values) == len(per_date):
            out[key] = float(values[0]) if len(values) == 1 else [float(v) for v in values]
    return out

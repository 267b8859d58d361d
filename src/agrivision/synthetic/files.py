"""``write_synthetic``: a synthetic scene on disk as Sentinel-2 L2A- or L1C-like products.

Rasters are uint16 digital numbers ``DN = round(reflectance * 10000) + 1000`` (the
``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` of processing baseline 04.00+), nodata 0; L2A
products carry an SCL band, L1C products (top-of-atmosphere, all 13 bands) carry no quality
band at all, as delivered by ESA. Written as COGs through
:func:`agrivision.io.cog.to_cogs` in one pass over the scene graph. Next to them: a STAC Item
per date (``item_{YYYY-MM-DD}.json``), an ItemCollection of all dates (``items.json``), the
fields as RFC 7946 GeoJSON (lon/lat) and the truth rasters (in ``truth/``, so that
``open_scene(outdir)`` sees only the bands).

File names follow ``S2X_MSIL2A_{YYYYMMDD}_{TILE}_{BAND}_{RES}.tif`` (layout ``"bands"``, one
file per band at its native 10/20/60 m resolution) or ``S2X_MSIL2A_{YYYYMMDD}_{TILE}_10m.tif``
(layout ``"stack"``, all bands and SCL at 10 m in one file); ``MSIL1C`` for L1C.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.warp import transform_geom

from agrivision.errors import ConfigError, OutputError
from agrivision.health.schema import DEFAULT_SCHEMA
from agrivision.io.atomic import atomic_path
from agrivision.io.cog import to_cogs
from agrivision.sensors import load_profile
from agrivision.synthetic.layout import CLASSES, LANDCOVER
from agrivision.synthetic.scene import SNAPSHOT_DATE, synthetic_scene

PROCESSING_BASELINE = "05.10"
BOA_ADD_OFFSET = -1000
_SENSORS = {"sentinel-2-l2a": ("MSIL2A", "BOA_ADD_OFFSET"),
            "sentinel-2-l1c": ("MSIL1C", "RADIO_ADD_OFFSET")}  # fmt: skip
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
]
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Colours of the truth rasters (RGBA): those of the project's health schema.
CLASS_COLOURS = DEFAULT_SCHEMA.colormap
#: Codes of the cloud truth (see :mod:`agrivision.synthetic.scene`).
CLOUD_CODES = {0: "clear", 1: "cloud", 2: "thin cirrus", 3: "cloud shadow"}
LANDCOVER_COLOURS = {0: (0, 0, 0, 0), 1: (230, 200, 90, 255), 2: (150, 210, 110, 255),
                     3: (120, 120, 120, 255), 4: (20, 90, 40, 255), 5: (40, 110, 220, 255),
                     6: (200, 60, 60, 255)}  # fmt: skip


@dataclass
class SyntheticFiles:
    """Paths written by :func:`write_synthetic`.

    Attributes
    ----------
    outdir
        The output folder.
    items
        ``items.json``, the STAC ItemCollection of all dates (give it to ``open_scene``).
    item_files
        ``{date: item_{date}.json}``.
    rasters
        ``{date: {band_id: path}}`` (layout "bands") or ``{date: {"stack": path}}``.
    fields
        ``fields.geojson`` (RFC 7946, EPSG:4326) with the truth attributes per field.
    truth_classes, truth_landcover
        ``truth/truth_classes.tif`` (one band per date) and ``truth/truth_landcover.tif``:
        uint8 COGs with colour tables and ``CLASS_NAMES`` tags.
    truth_clouds
        ``truth/truth_clouds.tif`` (one band per date, codes :data:`CLOUD_CODES`), for
        products without an SCL band (L1C).
    dates
        ISO dates (``YYYY-MM-DD``).
    """

    outdir: Path
    items: Path
    item_files: dict[str, Path] = field(default_factory=dict)
    rasters: dict[str, dict[str, Path]] = field(default_factory=dict)
    fields: Path | None = None
    truth_classes: Path | None = None
    truth_landcover: Path | None = None
    truth_clouds: Path | None = None
    dates: list[str] = field(default_factory=list)


def write_synthetic(
    outdir: str | os.PathLike,
    seed: int = 0,
    *,
    shape: tuple[int, int] = (1024, 1024),
    dates: Sequence[str | dt.date] | None = None,
    layout: str = "bands",
    tile: str = "T33UUU",
    crs: str = "EPSG:32633",
    origin: tuple[float, float] = (500000.0, 5800000.0),
    chunks: int = 512,
    clouds: bool = True,
    mean_field_ha: float = 20.0,
    overwrite: bool = True,
    sensor: str = "sentinel-2-l2a",
    bands: Sequence[str] | None = None,
) -> SyntheticFiles:
    """Write a synthetic Sentinel-2 L2A- or L1C-like scene, its STAC metadata and its truth.

    Parameters
    ----------
    outdir
        Folder (created if missing).
    seed, shape, dates, crs, origin, chunks, clouds, mean_field_ha
        As for :func:`~agrivision.synthetic.synthetic_scene` (10 m pixels).
    layout
        ``"bands"``: one COG per band and date at the band's native resolution;
        ``"stack"``: one 10 m multi-band COG per date (bands B01..B12, B8A, then SCL).
    tile
        MGRS tile id used in file names and metadata.
    overwrite
        Replace existing files.
    sensor
        ``sentinel-2-l2a`` (surface reflectance and SCL) or ``sentinel-2-l1c`` (all 13
        top-of-atmosphere bands, no quality band; the cloud truth is then written too).
    bands
        Band ids to write (e.g. ``["B02", "B03", "B04", "B08"]``); default all.

    Returns
    -------
    SyntheticFiles
    """
    if layout not in ("bands", "stack"):
        raise ConfigError(
            f"unknown layout {layout!r}", source="write_synthetic", fix="use 'bands' or 'stack'"
        )
    if sensor not in _SENSORS:
        raise ConfigError(
            f"unknown sensor {sensor!r}",
            source="write_synthetic",
            fix=f"use one of {list(_SENSORS)}",
        )
    level, offset_tag = _SENSORS[sensor]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    scene, truth = synthetic_scene(
        seed, shape=shape, resolution=10.0, crs=crs, origin=origin, dates=dates, chunks=chunks,
        clouds=clouds, sensor=sensor, mean_field_ha=mean_field_ha,
    )  # fmt: skip
    profile = load_profile(sensor)
    order = [b for b in profile.band_order if profile.bands[b].common_name in scene.data_vars]
    if bands is not None:
        order = [b for b in order if b in bands]
    quality = ["SCL"] if "scl" in scene.data_vars else []
    stamps = list(pd.DatetimeIndex(scene["time"].values)) if "time" in scene.dims else None
    day_list = [s.strftime("%Y-%m-%d") for s in stamps] if stamps else [SNAPSHOT_DATE]
    files = SyntheticFiles(outdir=out, items=out / "items.json", dates=day_list)
    jobs: list[tuple[Any, Path, dict]] = []
    assets: dict[str, dict[str, dict]] = {}
    for t, day in enumerate(day_list):
        one = scene.isel(time=t) if stamps else scene
        stem = f"S2X_{level}_{day.replace('-', '')}_{tile}"
        tags = {
            "SENSOR": sensor, "DATETIME": f"{day}T00:00:00Z",
            "PROCESSING_BASELINE": PROCESSING_BASELINE, offset_tag: BOA_ADD_OFFSET,
        }  # fmt: skip
        files.rasters[day], assets[day] = {}, {}
        if layout == "bands":
            for bid in [*order, *quality]:
                name = "scl" if bid == "SCL" else profile.bands[bid].common_name
                spec = profile.masks["SCL"] if bid == "SCL" else profile.bands[bid]
                res = int(spec.resolution_m or 10)
                data = _native(one[name], res // 10, crs)
                if bid != "SCL":
                    data = _dn(data)
                path = out / f"{stem}_{bid}_{res}m.tif"
                jobs.append((data, path, {"tags": tags, "descriptions": [bid], "nodata": 0}))
                files.rasters[day][bid] = path
                assets[day][bid] = _asset(path, [bid], profile, data)
        else:
            layers = [_dn(one[profile.bands[b].common_name]) for b in order]
            layers += [one["scl"].astype(np.uint16) for _ in quality]
            stack = xr.concat(layers, dim=xr.DataArray([*order, *quality], dims="band"))
            stack = stack.rio.write_crs(crs)
            path = out / f"{stem}_10m.tif"
            jobs.append((stack, path, {"tags": tags, "nodata": 0}))
            files.rasters[day]["stack"] = path
            assets[day]["stack"] = _asset(path, [*order, *quality], profile, stack)
    # Truth rasters go to a subfolder so that open_scene(outdir) finds only the bands.
    (out / "truth").mkdir(exist_ok=True)
    files.truth_classes = out / "truth" / "truth_classes.tif"
    files.truth_landcover = out / "truth" / "truth_landcover.tif"
    jobs.append((truth.classes, files.truth_classes,
                 {"colormap": CLASS_COLOURS, "class_names": CLASSES, "nodata": 0}))  # fmt: skip
    jobs.append((truth.landcover, files.truth_landcover,
                 {"colormap": LANDCOVER_COLOURS, "class_names": LANDCOVER, "nodata": 0}))  # fmt: skip
    if not quality:  # no SCL to read the clouds from: the truth says where they are
        files.truth_clouds = out / "truth" / "truth_clouds.tif"
        jobs.append((truth.clouds, files.truth_clouds, {"class_names": CLOUD_CODES}))
    to_cogs(jobs, overwrite=overwrite)

    files.fields = out / "fields.geojson"
    _write_geojson(truth.fields, files.fields, overwrite=overwrite)
    items = []
    for day in day_list:
        item = _item(day, tile, assets[day], scene, crs, level)
        path = out / f"item_{day}.json"
        _write_json(item, path, overwrite=overwrite)
        files.item_files[day] = path
        items.append(item)
    _write_json({"type": "FeatureCollection", "features": items}, files.items, overwrite=overwrite)
    return files


def _native(arr: xr.DataArray, factor: int, crs: str) -> xr.DataArray:
    """Resample a 10 m band to ``factor`` x 10 m: block mean (reflectance), first pixel (SCL).

    Partial blocks at the right/bottom edges are dropped so that every band lies inside the
    10 m extent (readers that take the union of extents then get the 10 m grid back).
    """
    if factor == 1:
        return arr
    transform = arr.rio.transform()
    if np.issubdtype(arr.dtype, np.integer):
        ny, nx = arr.sizes["y"] // factor * factor, arr.sizes["x"] // factor * factor
        out = arr.isel(y=slice(0, ny, factor), x=slice(0, nx, factor))
    else:
        out = arr.coarsen(y=factor, x=factor, boundary="trim").mean()
    res = transform.a * factor
    out = out.assign_coords(
        y=transform.f - (np.arange(out.sizes["y"]) + 0.5) * res,
        x=transform.c + (np.arange(out.sizes["x"]) + 0.5) * res,
    )
    new = Affine(res, 0.0, transform.c, 0.0, -res, transform.f)
    return out.rio.write_crs(crs).rio.write_transform(new)


def _dn(refl: xr.DataArray) -> xr.DataArray:
    """Reflectance -> uint16 DN with the +1000 offset; NaN -> 0 (nodata)."""
    dn = (refl * 10000).round() + 1000
    return dn.where(refl.notnull(), 0).clip(0, 65535).astype(np.uint16)


def _asset(path: Path, band_ids: list[str], profile, data: xr.DataArray) -> dict:
    eo, raster = [], []
    transform = data.rio.transform()
    for bid in band_ids:
        if bid == "SCL":
            eo.append({"name": "SCL", "description": "scene classification"})
            raster.append({"data_type": "uint8" if data.dtype == np.uint8 else "uint16",
                           "nodata": 0, "spatial_resolution": transform.a})  # fmt: skip
            continue
        spec = profile.bands[bid]
        eo.append({"name": bid, "common_name": spec.common_name,
                   "center_wavelength": spec.center_um})  # fmt: skip
        raster.append({"data_type": "uint16", "nodata": 0, "scale": 0.0001, "offset": -0.1,
                       "spatial_resolution": transform.a})  # fmt: skip
    return {
        "href": f"./{path.name}",
        "type": _COG_TYPE,
        "roles": ["data"],
        "eo:bands": eo,
        "raster:bands": raster,
        "proj:shape": [int(data.sizes["y"]), int(data.sizes["x"])],
        "proj:transform": [float(v) for v in list(transform)[:6]],
    }


def _item(
    day: str, tile: str, assets: dict[str, dict], scene: xr.Dataset, crs: str, level: str
) -> dict:
    left, bottom, right, top = scene.rio.bounds()
    footprint = {"type": "Polygon", "coordinates": [[(left, bottom), (right, bottom),
                 (right, top), (left, top), (left, bottom)]]}  # fmt: skip
    geom = transform_geom(crs, "EPSG:4326", footprint)
    ring = np.asarray(geom["coordinates"][0])
    epsg = CRS(crs).to_epsg()
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": _EXTENSIONS,
        "id": f"S2X_{level}_{day.replace('-', '')}_{tile}",
        "bbox": [*ring.min(axis=0).tolist(), *ring.max(axis=0).tolist()],
        "geometry": {"type": "Polygon", "coordinates": [ring.tolist()]},
        "properties": {
            "datetime": f"{day}T00:00:00Z",
            "platform": "sentinel-2x",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "s2:processing_baseline": PROCESSING_BASELINE,
            "s2:mgrs_tile": tile,
            "proj:epsg": epsg,
            "agrivision:synthetic": True,
            **{k: v for k, v in scene.attrs.items() if k.startswith("view:sun_")},
        },
        "links": [],
        "assets": {key: {**asset, "proj:epsg": epsg} for key, asset in assets.items()},
    }


def _write_json(doc: dict, path: Path, *, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))


def _write_geojson(gdf, path: Path, *, overwrite: bool) -> None:
    """RFC 7946 GeoJSON: lon/lat (EPSG:4326), counter-clockwise outer rings."""
    if gdf.crs is None:
        raise OutputError("fields have no CRS", source=path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pyogrio.write_dataframe(gdf.to_crs(4326), tmp, driver="GeoJSON",
                                layer_options={"RFC7946": "YES"})  # fmt: skip

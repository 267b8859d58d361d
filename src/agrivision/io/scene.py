"""``open_scene``: any set of raster sources -> one lazy, georeferenced Scene.

Flow: expand sources (files, folders, globs, STAC JSON) -> read headers
(:mod:`agrivision.io.sources`) -> decide the sensor profile -> name every band by its STAC
common name -> choose the target grid -> per band and date: read lazily with rioxarray,
scale to reflectance, put on the grid (odc-geo, dask-aware), mosaic first-valid -> stack
dates -> mask. Only headers are read; every pixel operation is a dask task.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import rioxarray
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject
from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform_bounds

from agrivision.errors import BandNotFoundError, GridError, SensorError, SourceError
from agrivision.grid import grid_of
from agrivision.io.sources import (
    PIXEL_GRID_CRS,
    BandAsset,
    FileInfo,
    band_token,
    date_of,
    expand_sources,
    file_info,
    is_stac,
    parse_date,
    resolve_href,
    stac_items,
)
from agrivision.limits import check_remote_reference, check_scene_pixels
from agrivision.masks import MASK_INPUTS, MASK_VARIABLES, MaskConfig, mask_config, mask_scene
from agrivision.sensors import SensorProfile, load_profile

# odc-geo warps in-memory blocks through rasterio without a geotransform; that is expected.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.warp")

#: STAC ``eo:common_name`` values (plus the numbered red-edge names used for Sentinel-2).
COMMON_NAMES = (
    "coastal", "blue", "green1", "green", "yellow", "red", "rededge", "rededge1", "rededge2",
    "rededge3", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22", "lwir11", "lwir12",
)  # fmt: skip
#: Fill value per quality band outside the data (their own "no data" code).
MASK_FILL = {"scl": 0, "qa_pixel": 1, "fmask": 255, "cloud_mask": 0, "cloud_probability": 0}

Resampling = str | Mapping[str, str] | None


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
        remote sources passed directly are always read.

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
    assets, profile = _assets(files, profile, bands, allow_remote)
    grid_assets = assets
    if select is not None:
        wanted = set(select)
        grid_assets = [a for a in assets if _var_name(a, profile) in wanted]
        missing = wanted - {_var_name(a, profile) for a in grid_assets}
        if missing:
            raise BandNotFoundError(
                f"sources have no band {sorted(missing)}",
                source=files[0] if len(files) == 1 else f"{len(files)} sources",
                fix="check select= against `agrivision info`",
            )
        # The mask's own bands are read too (on the selected bands' grid) and dropped after.
        helpers = wanted | (set(MASK_INPUTS) if masking is not None else set())
        assets = [a for a in assets if _var_name(a, profile) in helpers]
    geobox = _target_grid(grid_assets, resolution=resolution, crs=crs, like=like)
    # A header claiming 10^12 pixels is refused before dask builds a task per chunk.
    check_scene_pixels(geobox.shape, source=files[0] if len(files) == 1 else None)
    # Acquisitions of one calendar day (tiles of one satellite pass) are mosaicked together.
    by_date: dict[dt.date | None, dict[str, list[BandAsset]]] = defaultdict(
        lambda: defaultdict(list)
    )
    sun_props: dict[dt.date | None, Mapping] = {}
    for a in assets:
        by_date[a.date.date() if a.date else None][_var_name(a, profile)].append(a)
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
    reader = _Reader(chunks)
    per_date = []
    for day in sorted(by_date, key=lambda d: d or dt.date.min):
        variables = {
            name: _band_on_grid(group, name, profile, geobox, reader, scale, offset, resampling)
            for name, group in by_date[day].items()
        }
        per_date.append((first_time[day], variables))
    scene = _assemble(per_date, geobox, chunks)
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
        values = [p.get(key) for p in per_date]
        if values and None not in values:
            out[key] = float(values[0]) if len(values) == 1 else [float(v) for v in values]
    return out


# --------------------------------------------------------------------------- assets


def _assets(
    files: list[str],
    profile: SensorProfile | None,
    bands: Sequence[str] | None,
    allow_remote: bool | None = None,
) -> tuple[list[BandAsset], SensorProfile | None]:
    stac = [f for f in files if is_stac(f)]
    rasters = [f for f in files if not is_stac(f)]
    infos = [file_info(f) for f in rasters]
    items = [(f, item) for f in stac for item in stac_items(f)]
    if profile is None:
        profile = _detect_sensor(infos, [item for _, item in items])
    assets: list[BandAsset] = []
    for f, item in items:
        assets.extend(_stac_assets(f, item, profile, allow_remote))
    for info in infos:
        assets.extend(_file_assets(info, profile, bands))
    if not assets:
        raise SourceError("sources hold no usable band", source=files[0])
    return assets, profile


def _detect_sensor(infos: list[FileInfo], items: list[dict]) -> SensorProfile | None:
    """Guess the profile from STAC properties, GeoTIFF tags and file names; None if unsure."""
    hints: list[str] = []
    for item in items:
        props = item.get("properties", {})
        hints += [str(props.get(k, "")) for k in ("platform", "constellation", "instruments")]
        hints += [str(item.get("id", "")), str(props.get("processing:level", ""))]
        for key in ("agrivision:sensor", "sensor"):
            if key in props:
                hints.insert(0, str(props[key]))
    for info in infos:
        hints += [info.tags.get(k, "") for k in ("SENSOR", "LEVEL", "PRODUCT_TYPE")]
        hints.append(os.path.basename(info.path))
    for h in hints:  # an exact profile name wins (files agrivision wrote say so)
        try:
            return load_profile(h.strip())
        except SensorError:
            continue
    text = " ".join(hints).upper()
    if (
        "SENTINEL-2" in text
        or "SENTINEL2" in text
        or "MSIL" in text
        or "S2A" in text
        or "S2B" in text
    ):
        return load_profile("sentinel-2-l1c" if "L1C" in text else "sentinel-2-l2a")
    for sat, name in (
        ("LC09", "landsat-9-c2-l2"),
        ("LC08", "landsat-8-c2-l2"),
        ("LE07", "landsat-7-c2-l2"),
    ):
        if sat in text and "L2SP" in text:
            return load_profile(name)
    return None


def _stac_assets(
    path: str, item: dict, profile: SensorProfile | None, allow_remote: bool | None = None
) -> list[BandAsset]:
    props = item.get("properties", {})
    when = parse_date(str(props.get("datetime") or props.get("start_datetime") or ""))
    baseline = props.get("s2:processing_baseline")
    out = []
    for key, asset in item["assets"].items():
        href = asset.get("href", "")
        roles = asset.get("roles", ["data"])
        if "data" not in roles or not href.lower().split("?")[0].endswith(
            (".tif", ".tiff", ".jp2")
        ):
            continue
        eo = asset.get("eo:bands") or asset.get("bands") or [{}]
        raster = asset.get("raster:bands") or [{}]
        check_remote_reference(href, container=path, allow_remote=allow_remote)
        info = file_info(resolve_href(href, path))
        for i in range(info.count):
            band = eo[i] if i < len(eo) else {}
            rb = raster[i] if i < len(raster) else {}
            ident = band.get("eo:common_name") or band.get("common_name") or band.get("name") or key
            if profile and profile.common_name(key):
                ident = key  # the asset key is the sensor's band id (e.g. "B04", "SCL")
            out.append(
                BandAsset(
                    file=info,
                    band=i + 1,
                    band_id=ident,
                    date=when,
                    scale=rb.get("scale"),
                    offset=rb.get("offset"),
                    baseline=baseline,
                    properties=props,
                )
            )
    return out


def _file_assets(
    info: FileInfo, profile: SensorProfile | None, bands: Sequence[str] | None
) -> list[BandAsset]:
    known = (*COMMON_NAMES, *MASK_VARIABLES)
    baseline = info.tags.get("PROCESSING_BASELINE")
    if bands is not None:
        if len(bands) != info.count:
            raise BandNotFoundError(
                f"bands= names {len(bands)} bands but the file has {info.count}",
                source=info.path,
                fix="give one name per band, in file order",
            )
        ids: list[str | None] = list(bands)
    elif info.count == 1:
        ids = [
            band_token(info.descriptions[0], profile, known)
            or band_token(info.band_tags[0].get("BAND"), profile, known)
            or band_token(os.path.basename(info.path), profile, known)
        ]
    else:
        ids = [band_token(d, profile, known) for d in info.descriptions]
        if None in ids and profile is not None and info.count == len(profile.band_order):
            ids = list(profile.band_order)
        elif None in ids and "BANDS" in info.tags:
            listed = [b.strip() for b in info.tags["BANDS"].split(",")]
            ids = listed if len(listed) == info.count else ids
    if None in ids:
        raise BandNotFoundError(
            "cannot tell which band is which (no band descriptions matching a band id or "
            "common name)",
            source=info.path,
            fix="pass bands=[...] (e.g. --bands blue,green,red,nir) or --sensor NAME",
        )
    out = []
    for i, ident in enumerate(ids, start=1):
        out.append(
            BandAsset(
                file=info,
                band=i,
                band_id=ident,
                date=date_of(info, i),
                offset=_offset_from_tags(info, i, profile),
                baseline=baseline,
            )
        )
    return out


def _offset_from_tags(info: FileInfo, band: int, profile: SensorProfile | None) -> float | None:
    """Sentinel-2 products state the DN offset as BOA_ADD_OFFSET / RADIO_ADD_OFFSET (in DN)."""
    for tags in (info.band_tags[band - 1], info.tags):
        for key in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"):
            if key in tags:
                scale = profile.scale if profile else 1e-4
                return float(tags[key]) * scale
    return None


def _var_name(asset: BandAsset, profile: SensorProfile | None) -> str:
    ident = str(asset.band_id)
    if profile is not None:
        name = profile.common_name(ident)
        if name:
            return name
    low = ident.lower()
    if low in COMMON_NAMES or low in MASK_VARIABLES:
        return low
    raise BandNotFoundError(
        f"band {ident!r} is neither a band of sensor "
        f"{profile.name if profile else '(none detected)'} nor a STAC common name",
        source=asset.file.path,
        fix="pass --sensor NAME, or bands=[...] with common names",
    )


# --------------------------------------------------------------------------- grid


def _target_grid(assets: list[BandAsset], *, resolution: Any, crs: Any, like: Any) -> GeoBox:
    if like is not None:
        return grid_of(like)
    target_crs = CRS.from_user_input(crs) if crs is not None else CRS(assets[0].file.crs)
    refl = [a for a in assets if str(a.band_id).lower() not in MASK_VARIABLES] or assets
    native = [a for a in refl if CRS(a.file.crs) == target_crs]
    if resolution is not None:
        rx, ry = (resolution, resolution) if np.isscalar(resolution) else resolution
        anchor = native[0].file.transform if native else None
    elif native:
        finest = min(native, key=lambda a: abs(a.file.transform.a * a.file.transform.e))
        rx, ry = abs(finest.file.transform.a), abs(finest.file.transform.e)
        anchor = finest.file.transform
    else:
        raise GridError(
            "sources are in another CRS than the target and no resolution was given",
            fix="pass resolution= (in target CRS units)",
        )
    bounds = [transform_bounds(a.file.crs, target_crs, *_bounds(a.file)) for a in assets]
    left, bottom = min(b[0] for b in bounds), min(b[1] for b in bounds)
    right, top = max(b[2] for b in bounds), max(b[3] for b in bounds)
    ox, oy = (anchor.c, anchor.f) if anchor is not None else (0.0, 0.0)
    x0 = ox + math.floor((left - ox) / rx + 1e-6) * rx
    y1 = oy + math.ceil((top - oy) / ry - 1e-6) * ry
    width = math.ceil((right - x0) / rx - 1e-6)
    height = math.ceil((y1 - bottom) / ry - 1e-6)
    from affine import Affine

    return GeoBox((height, width), Affine(rx, 0.0, x0, 0.0, -ry, y1), target_crs)


def _bounds(info: FileInfo) -> tuple[float, float, float, float]:
    t, (h, w) = info.transform, info.shape
    return t.c, t.f + t.e * h, t.c + t.a * w, t.f


# --------------------------------------------------------------------------- pixels


class _Reader:
    """Opens each file once (lazily, dask chunks aligned to the file's blocks)."""

    def __init__(self, chunks: int):
        self.chunks = chunks
        self._open: dict[str, xr.DataArray] = {}

    def band(self, asset: BandAsset) -> xr.DataArray:
        path = asset.file.path
        if path not in self._open:
            by, bx = asset.file.block_shape
            cy = max(by, self.chunks // by * by)
            cx = max(bx, self.chunks // bx * bx)
            self._open[path] = rioxarray.open_rasterio(
                path, chunks={"band": 1, "y": cy, "x": cx}, lock=False, cache=False,
                mask_and_scale=False,
            )  # fmt: skip
        return self._open[path].isel(band=asset.band - 1, drop=True)


def _band_on_grid(
    group: list[BandAsset],
    name: str,
    profile: SensorProfile | None,
    geobox: GeoBox,
    reader: _Reader,
    scale: float | None,
    offset: float | None,
    resampling: Resampling,
) -> xr.DataArray:
    """One variable of one date: every asset scaled, put on the grid, then mosaicked."""
    is_mask = name in MASK_VARIABLES
    layers = []
    for asset in group:
        arr = reader.band(asset)
        if not is_mask:
            arr = _reflectance(arr, asset, profile, scale, offset)
        if not _same_grid(asset.file, geobox):
            method = _resampling(name, asset.file, geobox, resampling)
            fill = MASK_FILL.get(name, 0) if is_mask else np.nan
            arr = xr_reproject(
                arr, geobox, resampling=method, dst_nodata=fill, chunks=(reader.chunks,) * 2
            )
        layers.append(arr.data)
    data = layers[0]
    for more in layers[1:]:
        if is_mask:
            data = da.where(data == MASK_FILL.get(name, 0), more, data)
        else:
            data = da.where(da.isnan(data), more, data)
    data = data.rechunk((reader.chunks, reader.chunks))
    attrs = {"band_id": str(group[0].band_id)}
    if profile is not None:
        spec = next((s for b, s in profile.bands.items() if s.common_name == name), None)
        if spec is not None and spec.center_um is not None:
            attrs["center_wavelength_um"] = spec.center_um
    return xr.DataArray(data, dims=("y", "x"), attrs=attrs, name=name)


def band_layers(
    files: Sequence[str],
    *,
    sensor: str | os.PathLike | None = None,
    bands: Sequence[str] | None = None,
    item: dict | None = None,
) -> tuple[dict[tuple[str, int], tuple[str, float, float, float | None]], SensorProfile | None]:
    """What each band of some files is, read from headers only (as :func:`open_scene` does).

    Parameters
    ----------
    files
        Raster files (or one STAC JSON with ``item``).
    sensor, bands
        As for :func:`open_scene`.
    item
        The STAC Item of ``files[0]`` to describe instead of the files.

    Returns
    -------
    tuple
        ``({(path, band): (variable, scale, offset, nodata)}, profile)``: reflectance is
        ``DN * scale + offset``; quality bands have scale 1, offset 0.
    """
    profile = load_profile(sensor) if sensor is not None else None
    if item is not None:
        profile = profile or _detect_sensor([], [item])
        assets = _stac_assets(files[0], item, profile)
    else:
        assets, profile = _assets(list(files), profile, bands)
    out = {}
    for a in assets:
        name = _var_name(a, profile)
        s, o, nodata = (
            (1.0, 0.0, a.file.nodata)
            if name in MASK_VARIABLES
            else (_scale_offset(a, profile, None, None))
        )
        out[(a.file.path, a.band)] = (name, s, o, nodata)
    return out, profile


def _scale_offset(
    asset: BandAsset, profile: SensorProfile | None, scale: float | None, offset: float | None
) -> tuple[float, float, float | None]:
    nodata = asset.file.nodata
    if nodata is None and profile is not None:
        nodata = profile.nodata
    integer = np.issubdtype(np.dtype(asset.file.dtype), np.integer)
    if integer:
        s = scale if scale is not None else asset.scale
        if s is None:
            if profile is None:
                raise SensorError(
                    "integer data but no sensor profile to scale it to reflectance",
                    source=asset.file.path,
                    fix="pass --sensor NAME (see `agrivision info --sensors`) or scale=",
                )
            s = profile.scale
        o = offset if offset is not None else asset.offset
        if o is None:
            o = (
                profile.offset_for(asset.baseline, asset.date.date() if asset.date else None)
                if profile
                else 0.0
            )
    else:  # float data are reflectance already, unless the caller says otherwise
        s = 1.0 if scale is None else scale
        o = 0.0 if offset is None else offset
    return s, o, nodata


def _reflectance(
    arr: xr.DataArray,
    asset: BandAsset,
    profile: SensorProfile | None,
    scale: float | None,
    offset: float | None,
) -> xr.DataArray:
    s, o, nodata = _scale_offset(asset, profile, scale, offset)
    data = arr.data.map_blocks(
        _to_reflectance, scale=np.float32(s), offset=np.float32(o), nodata=nodata,
        dtype=np.float32, meta=np.array((), dtype=np.float32),
    )  # fmt: skip
    out = arr.copy(data=data)
    out.attrs = {"scale": s, "offset": o}
    return out


def _to_reflectance(block: np.ndarray, scale: np.float32, offset: np.float32, nodata) -> np.ndarray:
    out = block.astype(np.float32)
    if scale != 1 or offset != 0:
        out *= scale
        out += offset
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        out[block == nodata] = np.nan
    out[~np.isfinite(out)] = np.nan  # infinities in float sources are not reflectance
    return out


def _same_grid(info: FileInfo, geobox: GeoBox) -> bool:
    return (
        CRS(info.crs) == geobox.crs.proj
        and info.shape == tuple(geobox.shape)
        and info.transform.almost_equals(geobox.affine, precision=1e-6 * abs(geobox.affine.a))
    )


def _resampling(name: str, info: FileInfo, geobox: GeoBox, resampling: Resampling) -> str:
    if isinstance(resampling, str):
        return resampling
    if isinstance(resampling, Mapping) and name in resampling:
        return resampling[name]
    coarser = abs(geobox.affine.a) > abs(info.transform.a) * 1.0001
    if name in MASK_VARIABLES:
        return "mode" if coarser else "nearest"
    return "average" if coarser else "nearest"


# --------------------------------------------------------------------------- assemble


def _assemble(
    per_date: list[tuple[dt.datetime | None, dict[str, xr.DataArray]]], geobox: GeoBox, chunks: int
) -> xr.Dataset:
    coords = xr_coords(geobox)
    names: list[str] = []
    for _, variables in per_date:
        names += [n for n in variables if n not in names]
    names.sort(key=lambda n: (n in MASK_VARIABLES, _band_rank(n)))
    if len(per_date) == 1:
        ((day, variables),) = per_date
        ds = xr.Dataset({n: variables[n] for n in names}).assign_coords(coords)
        if day is not None:
            ds.attrs["datetime"] = day.isoformat()
    else:
        stacked = {}
        for n in names:
            layers = []
            for _, variables in per_date:
                if n in variables:
                    layers.append(variables[n].data)
                else:  # band missing on this date: NaN (or the mask's fill code)
                    fill = MASK_FILL.get(n, np.nan)
                    dtype = (
                        np.float32
                        if n not in MASK_VARIABLES
                        else next(v[n].dtype for _, v in per_date if n in v)
                    )
                    layers.append(da.full(geobox.shape, fill, dtype=dtype, chunks=chunks))
            attrs = next(v[n].attrs for _, v in per_date if n in v)
            stacked[n] = xr.DataArray(da.stack(layers), dims=("time", "y", "x"), attrs=attrs)
        times = [np.datetime64(day, "ns") for day, _ in per_date]
        ds = xr.Dataset(stacked).assign_coords(coords).assign_coords(time=times)
    ds = ds.rio.write_crs(geobox.crs.to_wkt())
    return ds.rio.write_transform(geobox.affine)


def _band_rank(name: str) -> int:
    return COMMON_NAMES.index(name) if name in COMMON_NAMES else len(COMMON_NAMES)

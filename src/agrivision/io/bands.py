"""Band naming and scaling from headers only: which variable each band of each source is.

Sources are files (GeoTIFF tags, band descriptions, file names) or STAC Items (asset keys,
``eo:bands``, ``raster:bands``). Names are STAC ``eo:common_name`` values or quality-band
names; scale/offset turn integer DN into reflectance (0..1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from agrivision.errors import BandNotFoundError, SensorError, SourceError
from agrivision.io.remote import is_searched
from agrivision.io.sources import (
    BandAsset,
    FileInfo,
    band_token,
    date_of,
    file_info,
    is_stac,
    parse_date,
    resolve_href,
    stac_items,
)
from agrivision.limits import check_remote_reference, is_remote
from agrivision.sensors import MASK_VARIABLES, SensorProfile, detect_profile, load_profile

#: STAC ``eo:common_name`` values (plus the numbered red-edge names used for Sentinel-2).
COMMON_NAMES = (
    "coastal", "blue", "green1", "green", "yellow", "red", "rededge", "rededge1", "rededge2",
    "rededge3", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22", "lwir11", "lwir12",
)  # fmt: skip


#: Remote headers read at once (a few connections per server, as browsers open).
_HEADER_THREADS = 8


def band_assets(
    files: list[str],
    profile: SensorProfile | None,
    bands: Sequence[str] | None,
    allow_remote: bool | None = None,
) -> tuple[list[BandAsset], SensorProfile | None]:
    """Every band of every source (files, STAC JSON), with the profile given or detected.

    Reads headers only. Raises :class:`~agrivision.errors.SourceError` when no band is usable.
    """
    stac = [f for f in files if is_stac(f)]
    rasters = [f for f in files if not is_stac(f)]
    infos = [file_info(f) for f in rasters]
    items = [(f, item) for f in stac for item in stac_items(f)]
    if profile is None:
        profile = detect_sensor(infos, [item for _, item in items])
    headers = _remote_headers(items, allow_remote)
    assets: list[BandAsset] = []
    for f, item in items:
        assets.extend(_stac_assets(f, item, profile, allow_remote, headers))
    for info in infos:
        assets.extend(_file_assets(info, profile, bands))
    if not assets:
        raise SourceError("sources hold no usable band", source=files[0])
    return assets, profile


def detect_sensor(infos: list[FileInfo], items: list[dict]) -> SensorProfile | None:
    """The profile that STAC properties, GeoTIFF tags and file names point to; None if unsure.

    The rules live in the profiles (``detect:``, see :func:`agrivision.sensors.detect_profile`).
    """
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
    return detect_profile(hints)


def _data_assets(path: str, item: dict, allow_remote: bool | None) -> Iterator[tuple[str, dict]]:
    """``(key, asset)`` of the raster data assets of an item, remote ones only if allowed."""
    # Items written by `agrivision search`: the user asked for the network.
    trusted = True if is_searched(item) else allow_remote
    for key, asset in item["assets"].items():
        href = asset.get("href", "")
        roles = asset.get("roles", ["data"])
        if "data" in roles and href.lower().split("?")[0].endswith((".tif", ".tiff", ".jp2")):
            check_remote_reference(href, container=path, allow_remote=trusted)
            yield key, asset


def _remote_headers(
    items: list[tuple[str, dict]], allow_remote: bool | None
) -> dict[str, FileInfo]:
    """Headers of the remote assets, read concurrently: each one is a round trip to a server,
    and a season of scenes has hundreds."""
    paths = [
        resolve_href(asset["href"], f)
        for f, item in items
        for _, asset in _data_assets(f, item, allow_remote)
        if is_remote(asset["href"])
    ]
    if len(paths) < 2:
        return {}
    with ThreadPoolExecutor(max_workers=_HEADER_THREADS) as pool:
        return dict(zip(paths, pool.map(file_info, paths), strict=True))


def _stac_assets(
    path: str,
    item: dict,
    profile: SensorProfile | None,
    allow_remote: bool | None = None,
    headers: Mapping[str, FileInfo] | None = None,
) -> list[BandAsset]:
    props = item.get("properties", {})
    when = parse_date(str(props.get("datetime") or props.get("start_datetime") or ""))
    baseline = props.get("s2:processing_baseline")
    out = []
    for key, asset in _data_assets(path, item, allow_remote):
        eo = asset.get("eo:bands") or asset.get("bands") or [{}]
        raster = asset.get("raster:bands") or [{}]
        href = resolve_href(asset["href"], path)
        info = headers[href] if headers and href in headers else file_info(href)
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
            if len(listed) == info.count:
                ids = [*listed]
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


def variable_name(asset: BandAsset, profile: SensorProfile | None) -> str:
    """The Scene variable of a band: the profile's common name or a STAC common name."""
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
        profile = profile or detect_sensor([], [item])
        assets = _stac_assets(files[0], item, profile)
    else:
        assets, profile = band_assets(list(files), profile, bands)
    out = {}
    for a in assets:
        name = variable_name(a, profile)
        s, o, nodata = (
            (1.0, 0.0, a.file.nodata)
            if name in MASK_VARIABLES
            else (scale_offset(a, profile, None, None))
        )
        out[(a.file.path, a.band)] = (name, s, o, nodata)
    return out, profile


def scale_offset(
    asset: BandAsset, profile: SensorProfile | None, scale: float | None, offset: float | None
) -> tuple[float, float, float | None]:
    """``(scale, offset, nodata)`` that turn a band's DN into reflectance (0..1).

    Explicit ``scale``/``offset`` win, then STAC ``raster:bands`` and GeoTIFF tags, then the
    profile (with its processing-baseline offset); float data are reflectance already.
    """
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

"""The assets of a searched STAC Item that agrivision reads, and their reflectance scaling.

Catalogues name assets differently: Earth Search by common name (``red``, ``nir``, ``scl``;
Landsat ``nir08``, ``qa_pixel``), Planetary Computer Sentinel-2 by band id (``B04``, ``SCL``).
Each asset is mapped through the sensor profile onto the Scene's variable names; only the
single-band COGs of the wanted bands and the quality band are kept, so that a report reads
nothing else (no ``visual`` preview, no JPEG 2000 duplicate, no aerosol band).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence

from agrivision.errors import BandNotFoundError
from agrivision.io.sources import parse_date
from agrivision.sensors import MASK_VARIABLES, SensorProfile

#: Reflectance bands kept by default: those of the report's NDVI and NDRE (Sentinel-2 B08,
#: Landsat ``nir08``) and the green/blue that screening and the RGB views use.
DEFAULT_BANDS = ("blue", "green", "red", "rededge1", "nir", "nir08")
#: Earth Search v1: True when the Sentinel-2 L2A pixels have had BOA_ADD_OFFSET subtracted
#: already (the item's ``raster:bands`` offset then does not apply).
EARTHSEARCH_OFFSET_APPLIED = "earthsearch:boa_offset_applied"
_RASTER_SUFFIXES = (".tif", ".tiff")


def select_assets(item: dict, profile: SensorProfile, bands: Sequence[str], *, source: str) -> dict:
    """A copy of ``item`` with only the assets agrivision reads, each with explicit scaling.

    Parameters
    ----------
    item
        A STAC Item (dict) from a search.
    profile
        The sensor profile of the item (band ids and common names, quality band, offsets).
    bands
        Reflectance variables to keep (STAC common names, e.g. ``red``, ``nir``).
    source
        Where the item came from (the API URL), for messages.

    Returns
    -------
    dict
        The item; each kept asset has ``roles`` with ``data`` and, for reflectance,
        ``raster:bands`` with the ``scale`` and ``offset`` that give reflectance 0..1.

    Raises
    ------
    BandNotFoundError
        The item has no COG for any wanted band, or none for the quality band.
    """
    out = copy.deepcopy(item)
    wanted = set(bands)
    quality = {m.name for m in profile.masks.values()}
    kept: dict[str, dict] = {}
    found: set[str] = set()
    for key, asset in item.get("assets", {}).items():
        href = str(asset.get("href", ""))
        if not href.lower().split("?")[0].endswith(_RASTER_SUFFIXES):
            continue
        if len(asset.get("eo:bands") or asset.get("bands") or [{}]) != 1:
            continue  # a preview (visual) or a stack: not one band
        name = asset_variable(key, asset, profile)
        if name is None or name in found or not (name in wanted or name in quality):
            continue
        found.add(name)
        asset = copy.deepcopy(asset)
        asset["roles"] = sorted({*asset.get("roles", []), "data"})
        if name not in MASK_VARIABLES:
            asset["raster:bands"] = [_scaling(item, asset, profile)]
        kept[key] = asset
    # Bands a sensor lacks (Landsat has no red edge) are left out; a quality band is needed.
    missing = [] if wanted & found else sorted(wanted)
    missing += [] if quality & found else sorted(quality)
    if missing:
        raise BandNotFoundError(
            f"item {item.get('id')} has no single-band COG for {' or '.join(missing)} "
            f"(its assets: {', '.join(item.get('assets', {}))})",
            source=source,
            fix="choose a collection of surface reflectance with a quality band (SCL or "
            "QA_PIXEL), e.g. sentinel-2-l2a or landsat-c2-l2, or other --bands",
        )
    out["assets"] = kept
    return out


def asset_variable(key: str, asset: dict, profile: SensorProfile) -> str | None:
    """The Scene variable of an asset: by its key (band id or common name), else by eo:bands."""
    name = profile.common_name(key)
    if name is None:
        band = (asset.get("eo:bands") or asset.get("bands") or [{}])[0]
        common = band.get("common_name") or band.get("eo:common_name")
        name = profile.common_name(str(common)) if common else None
    return name


def _scaling(item: dict, asset: dict, profile: SensorProfile) -> dict:
    """``raster:bands[0]`` of a reflectance asset with the right scale and offset.

    Earth Search v1 Sentinel-2 L2A states in ``earthsearch:boa_offset_applied`` whether the
    processing-baseline offset (-1000 DN from baseline 04.00) was already subtracted from the
    pixels; when it was, the offset its ``raster:bands`` still carry must not be applied
    again. Elsewhere ``raster:bands`` win, then the profile's offset for the baseline/date.
    """
    props = item.get("properties", {})
    band = dict((asset.get("raster:bands") or [{}])[0])
    band.setdefault("scale", profile.scale)
    when = parse_date(str(props.get("datetime") or ""))
    day: dt.date | None = when.date() if when else None
    baseline = props.get("s2:processing_baseline")
    if EARTHSEARCH_OFFSET_APPLIED in props:
        band["offset"] = (
            0.0 if props[EARTHSEARCH_OFFSET_APPLIED] else profile.offset_for(baseline, day)
        )
    elif "offset" not in band:
        band["offset"] = profile.offset_for(baseline, day)
    return band

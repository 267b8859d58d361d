"""A local cache of the fields' windows of remote COGs (``agrivision report --cache DIR``).

Each remote asset's window over the fields (widened to the COG's block edges, one pixel of
margin) is stored once as a local COG named by a hash of the asset URL (without its query
string, which holds expiring tokens) and of the fields' extent; a run that finds it reads no
byte of that asset from the network. The Items are rewritten to point at the cached files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from pathlib import Path

import geopandas as gpd
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from agrivision.errors import OutputError
from agrivision.io.atomic import atomic_path
from agrivision.io.remote import is_searched
from agrivision.io.sources import resolve_href, stac_items
from agrivision.limits import check_pixels, check_remote_reference, is_remote


def cache_windows(
    items: str | os.PathLike, fields: gpd.GeoDataFrame, folder: str | os.PathLike
) -> Path:
    """Store the fields' windows of the remote assets of ``items`` in ``folder``.

    Parameters
    ----------
    items
        A local STAC Item or ItemCollection JSON (e.g. from ``agrivision search``).
    fields
        Field polygons, any CRS.
    folder
        The cache folder (created when missing); files already there are reused.

    Returns
    -------
    Path
        An ItemCollection in ``folder`` whose remote assets point at the cached windows;
        Items that do not overlap the fields are left out.

    Raises
    ------
    SourceError
        A remote asset of an Item not written by ``agrivision search`` while remote access
        is not allowed (see :mod:`agrivision.limits`), or an asset that cannot be read.
    """
    cache = Path(folder)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the cache folder ({exc})", source=cache) from exc
    extent = ",".join(f"{v:.7f}" for v in fields.to_crs(4326).total_bounds)
    kept = []
    for item in stac_items(str(items)):
        item = copy.deepcopy(item)
        overlaps = True
        for asset in item["assets"].values():
            href = str(asset.get("href", ""))
            if not is_remote(href):
                asset["href"] = resolve_href(href, str(items)) if href else href
                continue
            check_remote_reference(
                href, container=items, allow_remote=True if is_searched(item) else None
            )
            key = hashlib.sha256(f"{href.split('?')[0]}|{extent}".encode()).hexdigest()[:32]
            path = cache / f"{key}.tif"
            if not path.exists() and not _store_window(
                resolve_href(href, str(items)), fields, path
            ):
                overlaps = False
                break
            asset["href"] = str(path.resolve())
        if overlaps:
            kept.append(item)
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]
    out = cache / f"items-{digest}.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"type": "FeatureCollection", "features": kept}, indent=1))
    return out


def _store_window(href: str, fields: gpd.GeoDataFrame, path: Path) -> bool:
    """Write the fields' window of ``href`` to ``path`` as a COG; False if they miss it."""
    with rasterio.open(href) as src:
        window = _block_window(src, fields)
        if window is None:
            return False
        check_pixels((src.count, window.height, window.width), what="cached window", source=href)
        data = src.read(window=window)
        by, bx = src.block_shapes[0]
        profile = {
            "driver": "COG", "width": window.width, "height": window.height,
            "count": src.count, "dtype": src.dtypes[0], "crs": src.crs,
            "transform": src.window_transform(window), "nodata": src.nodata,
            "compress": "deflate", "blocksize": max(16, min(by, bx) // 16 * 16),
        }  # fmt: skip
        tags, descriptions = src.tags(), src.descriptions
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(**tags)
        for i, text in enumerate(descriptions, start=1):
            if text:
                dst.set_band_description(i, text)
    return True


def _block_window(src, fields: gpd.GeoDataFrame) -> Window | None:
    """The fields' bounding window of ``src`` widened by a pixel and to block edges."""
    left, bottom, right, top = transform_bounds(fields.crs, src.crs, *fields.total_bounds)
    inv = ~src.transform
    cols, rows = zip(*(inv @ (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    by, bx = src.block_shapes[0]
    r0 = max(0, (math.floor(min(rows)) - 1) // by * by)
    c0 = max(0, (math.floor(min(cols)) - 1) // bx * bx)
    r1 = min(src.height, -(-(math.ceil(max(rows)) + 1) // by) * by)
    c1 = min(src.width, -(-(math.ceil(max(cols)) + 1) // bx) * bx)
    if r0 >= r1 or c0 >= c1:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)

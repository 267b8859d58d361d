"""The target grid of a scene and how each source gets onto it.

Default: the finest native resolution among reflectance bands in the target CRS, aligned to
that band's pixel edges, covering every source. Grids are odc-geo ``GeoBox`` values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import CRS
from rasterio.warp import transform_bounds

from agrivision.errors import GridError, NoOverlapError
from agrivision.grid import grid_of
from agrivision.io.sources import BandAsset, FileInfo
from agrivision.sensors import MASK_VARIABLES

#: A resampling method for every band, one per variable name, or None for the defaults.
Resampling = str | Mapping[str, str] | None


def target_grid(
    assets: list[BandAsset],
    *,
    resolution: float | Sequence[float] | None,
    crs: Any,
    like: xr.Dataset | xr.DataArray | GeoBox | None,
) -> GeoBox:
    """The grid of a scene: ``like``'s, or the sources' extent at ``resolution`` (CRS units).

    Without ``resolution`` the finest native reflectance band in the target CRS sets the pixel
    size and the pixel edges; ``crs`` defaults to the first source's CRS.
    """
    if like is not None:
        return grid_of(like)
    target_crs = CRS.from_user_input(crs) if crs is not None else CRS(assets[0].file.crs)
    refl = [a for a in assets if str(a.band_id).lower() not in MASK_VARIABLES] or assets
    native = [a for a in refl if CRS(a.file.crs) == target_crs]
    if resolution is not None:
        if isinstance(resolution, Sequence):
            rx, ry = float(resolution[0]), float(resolution[1])
        else:
            rx = ry = float(resolution)
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
    return GeoBox((height, width), Affine(rx, 0.0, x0, 0.0, -ry, y1), target_crs)


def crop_to_bounds(
    geobox: GeoBox, bounds: tuple[float, float, float, float], crs: Any, *, margin: int = 1
) -> GeoBox:
    """The part of ``geobox`` that covers ``bounds`` (in ``crs``), ``margin`` pixels wider.

    The result keeps the grid's pixel edges (a window of it, no resampling).

    Raises
    ------
    NoOverlapError
        ``bounds`` lie outside the grid.
    """
    left, bottom, right, top = transform_bounds(crs, geobox.crs, *bounds, densify_pts=21)
    inv = ~geobox.affine
    cols, rows = zip(*(inv @ (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    height, width = geobox.shape
    r0 = max(0, math.floor(min(rows) + 1e-6) - margin)
    r1 = min(height, math.ceil(max(rows) - 1e-6) + margin)
    c0 = max(0, math.floor(min(cols) + 1e-6) - margin)
    c1 = min(width, math.ceil(max(cols) - 1e-6) + margin)
    if r0 >= r1 or c0 >= c1:
        raise NoOverlapError(
            "the fields lie outside the imagery",
            fix="check that the fields and the imagery cover the same place",
        )
    return geobox[r0:r1, c0:c1]


def window_of(info: FileInfo, geobox: GeoBox) -> tuple[slice, slice] | None:
    """Rows and columns of a file that are exactly ``geobox`` (same CRS, pixel size and
    edges, inside the file), or None when the file must be resampled onto it."""
    t, g = info.transform, geobox.affine
    if geobox.crs is None or CRS(info.crs) != geobox.crs.proj:
        return None
    if not (math.isclose(t.a, g.a, rel_tol=1e-9) and math.isclose(t.e, g.e, rel_tol=1e-9)):
        return None
    col, row = ~t @ (g.c, g.f)
    c0, r0 = round(col), round(row)
    if abs(col - c0) > 1e-6 or abs(row - r0) > 1e-6:
        return None
    height, width = geobox.shape
    if r0 < 0 or c0 < 0 or r0 + height > info.shape[0] or c0 + width > info.shape[1]:
        return None
    return slice(r0, r0 + height), slice(c0, c0 + width)


def _bounds(info: FileInfo) -> tuple[float, float, float, float]:
    t, (h, w) = info.transform, info.shape
    return t.c, t.f + t.e * h, t.c + t.a * w, t.f


# --------------------------------------------------------------------------- pixels


def same_grid(info: FileInfo, geobox: GeoBox) -> bool:
    """True when a file already lies on ``geobox`` (same CRS, shape and pixel edges)."""
    return (
        geobox.crs is not None
        and CRS(info.crs) == geobox.crs.proj
        and info.shape == tuple(geobox.shape)
        and info.transform.almost_equals(geobox.affine, precision=1e-6 * abs(geobox.affine.a))
    )


def resampling_for(name: str, info: FileInfo, geobox: GeoBox, resampling: Resampling) -> str:
    """The resampling method for a variable: the caller's, else nearest when as fine or finer,
    ``average`` (reflectance) or ``mode`` (quality codes) when coarser."""
    if isinstance(resampling, str):
        return resampling
    if isinstance(resampling, Mapping) and name in resampling:
        return resampling[name]
    coarser = abs(geobox.affine.a) > abs(info.transform.a) * 1.0001
    if name in MASK_VARIABLES:
        return "mode" if coarser else "nearest"
    return "average" if coarser else "nearest"


# --------------------------------------------------------------------------- assemble

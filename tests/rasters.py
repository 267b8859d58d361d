"""Helpers to build small test rasters (GeoTIFFs in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import rasterio
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform=None,
    nodata=None,
    descriptions=None,
    tags: dict | None = None,
    band_tags: list[dict] | None = None,
    blocksize: int = 256,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a tiled GeoTIFF."""
    arr = data if data.ndim == 3 else data[None]
    count, rows, cols = arr.shape
    transform = transform or from_origin(500000, 5800000, 10, 10)
    profile = dict(driver="GTiff", width=cols, height=rows, count=count, dtype=arr.dtype,
                   crs=crs, transform=transform, nodata=nodata, compress="deflate")  # fmt: skip
    if rows >= blocksize and cols >= blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
        if tags:
            dst.update_tags(**tags)
        for i, bt in enumerate(band_tags or [], start=1):
            dst.update_tags(i, **bt)
    return path


def geodesic_ha(planar_ha: float, crs, x: float, y: float) -> float:
    """Ellipsoidal area of a small planar area (ha) at projected (x, y): the planar area over
    the projection's areal scale factor there (pyproj ``get_factors``), a reference that is
    independent of the geodesic polygon areas the package computes."""
    proj = pyproj.Proj(pyproj.CRS.from_user_input(crs))
    lon, lat = proj(x, y, inverse=True)
    return planar_ha / proj.get_factors(lon, lat).areal_scale

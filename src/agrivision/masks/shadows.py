"""Cloud shadows: the cloud mask projected away from the sun, kept where the ground is dark.

A cloud at height ``h`` casts its shadow ``h / tan(sun elevation)`` metres away, opposite the
sun's azimuth. The cloud mask is shifted along that direction for every height in a range
(one step per pixel of the detection grid), and the union of the shifts, outside the clouds,
is where a shadow can be. Only the dark pixels there are shadow: NIR below a threshold (about
a third of sunlit vegetation or soil; the s2cloudless shadow recipe of Google Earth Engine
uses 0.15) and, when the scene has it, SWIR 1.6 µm too, which keeps bright soil out.
"""

from __future__ import annotations

import math

import numpy as np

CLEAR, CLOUD, SHADOW = 0, 1, 2


def shadow_shifts(
    azimuth: float, elevation: float, heights_m: tuple[float, float], pixel_m: float
) -> list[tuple[int, int]]:
    """Integer ``(row, col)`` offsets (pixels of size ``pixel_m``) of the shadows of clouds
    at every height in ``heights_m`` (metres), for a sun at ``azimuth``/``elevation`` (deg).

    Rows grow southwards, columns eastwards (north-up grids).
    """
    tan_el = math.tan(math.radians(max(elevation, 5.0)))  # a sun near the horizon: cap the reach
    az = math.radians(azimuth)
    low, high = (h / tan_el / pixel_m for h in heights_m)
    steps = max(1, math.ceil(high - low))
    out: list[tuple[int, int]] = []
    for i in range(steps + 1):
        dist = low + (high - low) * i / steps
        shift = (round(math.cos(az) * dist), round(-math.sin(az) * dist))
        if shift not in out:
            out.append(shift)
    return out


def project_block(cloud: np.ndarray, shifts: list[tuple[int, int]]) -> np.ndarray:
    """Codes of one block: :data:`CLOUD` where ``cloud``, :data:`SHADOW` where a shifted cloud
    lands outside the clouds (a shadow *candidate*), :data:`CLEAR` elsewhere."""
    cloud = cloud.astype(bool)
    rows, cols = cloud.shape
    cast = np.zeros_like(cloud)
    for dr, dc in shifts:
        src = cloud[max(0, -dr) : rows - max(0, dr), max(0, -dc) : cols - max(0, dc)]
        cast[max(0, dr) : max(0, dr) + src.shape[0], max(0, dc) : max(0, dc) + src.shape[1]] |= src
    codes = np.where(cast, SHADOW, CLEAR).astype(np.uint8)
    codes[cloud] = CLOUD
    return codes


def dark(nir: np.ndarray, swir: np.ndarray | None, nir_max: float, swir_max: float) -> np.ndarray:
    """True where the ground is dark enough to be in a shadow."""
    with np.errstate(invalid="ignore"):
        out = nir < nir_max
        if swir is not None:
            out &= swir < swir_max
    return out

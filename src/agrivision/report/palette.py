"""The report's colours, defined once for the HTML map, the figures and the QGIS styles.

Statuses have fixed colours; continuous values (an index, ``peer_z``) and management zones
use one red-yellow-green ramp (ColorBrewer RdYlGn, 5 classes), low values red.
"""

from __future__ import annotations

import numpy as np

STATUS_COLOURS = {
    "good": "#1a9641",
    "watch": "#fdae61",
    "problem": "#d7191c",
    "insufficient data": "#9e9e9e",
}
#: ColorBrewer RdYlGn (5): evenly spaced stops from low (red) to high (green).
RAMP = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
#: The range an index ramp spans (NDVI-like indices: bare soil near 0, dense canopy near 1).
INDEX_RANGE = (-0.2, 1.0)
#: ``peer_z`` (robust SDs from the field's crop): the ramp spans this range.
PEER_Z_RANGE = (-3.0, 3.0)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def ramp_rgb(fraction: np.ndarray) -> np.ndarray:
    """Colours of :data:`RAMP` at ``fraction`` (0 = low, 1 = high; clipped), as uint8 RGB of
    shape ``fraction.shape + (3,)``; NaN gives black (callers mask it)."""
    stops = np.stack([_rgb(c) for c in RAMP])
    f = np.clip(np.nan_to_num(np.asarray(fraction, dtype=np.float64)), 0, 1) * (len(RAMP) - 1)
    low = np.minimum(f.astype(int), len(RAMP) - 2)
    w = (f - low)[..., None]
    return np.round(stops[low] * (1 - w) + stops[low + 1] * w).astype(np.uint8)


def hex_colour(rgb: np.ndarray) -> str:
    """``#rrggbb`` of one uint8 RGB triple."""
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def zone_colours(n: int) -> dict[int, str]:
    """Colours of zones ``1..n`` (1 = lowest index, red; ``n`` green; a single zone, the
    ramp's neutral middle: a uniform field is neither low nor high)."""
    fractions = np.linspace(0, 1, n) if n > 1 else np.array([0.5])
    return {k + 1: hex_colour(c) for k, c in enumerate(ramp_rgb(fractions))}

"""The report's colours, defined once for the HTML map, the figures and the QGIS styles.

Statuses have fixed colours; continuous values (an index, ``peer_z``) and management zones
use one red-yellow-green ramp (ColorBrewer RdYlGn, 5 classes), low values red. A model's
class share per grid cell (e.g. weeds) has a sequential ramp of its own: more is worse, none
is pale.
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
#: ColorBrewer YlOrRd (5): a model class's share per grid cell, from none (pale) to high (dark red).
SHARE_RAMP = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
#: Fill of a model's patches (e.g. weed patches): apart from both ramps.
PATCH_COLOUR = "#7b3294"
#: The range an index ramp spans (NDVI-like indices: bare soil near 0, dense canopy near 1).
INDEX_RANGE = (-0.2, 1.0)
#: ``peer_z`` (robust SDs from the field's crop): the ramp spans this range.
PEER_Z_RANGE = (-3.0, 3.0)


def hex_rgb(colour: str) -> np.ndarray:
    """The RGB values (0..255, float) of a ``#rrggbb`` colour."""
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def ramp_rgb(fraction: np.ndarray, ramp: tuple[str, ...] = RAMP) -> np.ndarray:
    """Colours of ``ramp`` (default :data:`RAMP`) at ``fraction`` (0 = low, 1 = high; clipped),
    interpolated linearly between its stops, as uint8 RGB of shape ``fraction.shape + (3,)``;
    NaN gives the first stop (callers mask it). ``report.js`` computes the same."""
    stops = np.stack([hex_rgb(c) for c in ramp])
    f = np.clip(np.nan_to_num(np.asarray(fraction, dtype=np.float64)), 0, 1) * (len(ramp) - 1)
    low = np.minimum(f.astype(int), len(ramp) - 2)
    w = (f - low)[..., None]
    return np.round(stops[low] * (1 - w) + stops[low + 1] * w).astype(np.uint8)


def hex_colour(rgb: np.ndarray) -> str:
    """``#rrggbb`` of one uint8 RGB triple."""
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


#: Steps of the zone ramp between the lowest and the highest zone of a field.
ZONE_SHADES = 20


def zone_shade(zone, zones_n) -> np.ndarray:
    """The shade (``1..ZONE_SHADES + 1``) of zone ``zone`` of a field's ``zones_n`` zones.

    A zone is coloured by its rank within its field, ``(zone - 1) / (zones_n - 1)`` (a single
    zone: 0.5, the ramp's neutral middle: a uniform field is neither low nor high), in
    steps of ``1 / ZONE_SHADES``: zone 2 of 2 is as green as zone 6 of 6, zone 2 of 3 is
    the middle. The report's map computes the same in ``report.js``.
    """
    zone = np.asarray(zone, dtype=np.float64)
    n = np.asarray(zones_n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rank = np.where(n > 1, (zone - 1) / (n - 1), 0.5)
    return 1 + np.floor(np.clip(rank, 0, 1) * ZONE_SHADES + 0.5).astype(np.int64)


def zone_colours() -> dict[int, str]:
    """Colour of each zone shade (:func:`zone_shade`): 1 = lowest zone, red; the last green."""
    fractions = np.linspace(0, 1, ZONE_SHADES + 1)
    return {k + 1: hex_colour(c) for k, c in enumerate(ramp_rgb(fractions))}

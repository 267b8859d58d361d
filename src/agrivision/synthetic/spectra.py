"""Endmember spectra and crop phenology of the synthetic scenes.

Pixels are linear mixtures of endmembers (reflectance 0..1 per Sentinel-2 band); the
fractions come from land cover, crop, growth stage and health class. Values follow typical
published canopy/soil spectra (e.g. the USGS spectral library and Sentinel-2 field studies):
green canopies have red ~0.03, a steep red-edge ramp and NIR 0.42-0.52; stressed canopies
raise red and SWIR and lower NIR and the red-edge shoulder; dry/brown leaves are flat and
bright in SWIR; soil rises steadily (red ~0.19, NIR ~0.27, SWIR16 ~0.32); water is dark
beyond green (NIR ~0.01).
"""

from __future__ import annotations

import math

import numpy as np

#: Bands modelled, STAC common names, in this order.
BANDS = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
    "swir16", "swir22",
)  # fmt: skip

#: Crops, in the order of their codes (``crop_code`` = index + 1).
CROPS = ("wheat", "maize", "sugar_beet", "rapeseed")

_E = {
    #            coast  blue   green  red    re1    re2    re3    nir    nir08  swir16 swir22
    "soil":     (0.085, 0.100, 0.135, 0.190, 0.210, 0.225, 0.245, 0.265, 0.270, 0.320, 0.270),
    "dry":      (0.060, 0.080, 0.110, 0.150, 0.190, 0.220, 0.240, 0.255, 0.260, 0.380, 0.280),
    "stressed": (0.035, 0.045, 0.090, 0.070, 0.135, 0.245, 0.310, 0.340, 0.345, 0.290, 0.170),
    "flower":   (0.050, 0.060, 0.175, 0.130, 0.175, 0.280, 0.330, 0.360, 0.370, 0.250, 0.140),
    "wheat":    (0.030, 0.035, 0.075, 0.034, 0.110, 0.290, 0.390, 0.425, 0.435, 0.230, 0.120),
    "maize":    (0.028, 0.032, 0.085, 0.032, 0.120, 0.330, 0.460, 0.500, 0.510, 0.240, 0.115),
    "sugar_beet": (0.027, 0.030, 0.090, 0.028, 0.125, 0.350, 0.480, 0.520, 0.530, 0.220, 0.100),
    "rapeseed": (0.032, 0.038, 0.080, 0.035, 0.115, 0.300, 0.410, 0.450, 0.460, 0.230, 0.115),
    "grass":    (0.032, 0.038, 0.085, 0.045, 0.120, 0.270, 0.350, 0.380, 0.385, 0.250, 0.140),
    "forest":   (0.020, 0.025, 0.050, 0.025, 0.070, 0.200, 0.270, 0.300, 0.310, 0.140, 0.060),
    "water":    (0.070, 0.065, 0.055, 0.030, 0.025, 0.018, 0.015, 0.012, 0.011, 0.006, 0.004),
    "road":     (0.090, 0.100, 0.110, 0.120, 0.125, 0.130, 0.135, 0.140, 0.145, 0.170, 0.160),
    "built":    (0.120, 0.130, 0.150, 0.185, 0.190, 0.200, 0.210, 0.220, 0.225, 0.260, 0.240),
    "cloud":    (0.620, 0.600, 0.580, 0.570, 0.570, 0.560, 0.560, 0.550, 0.550, 0.420, 0.300),
}  # fmt: skip
ENDMEMBERS = tuple(_E)

#: Bands only top-of-atmosphere products have (Sentinel-2 L1C B09, B10), in this order.
TOA_BANDS = ("nir09", "cirrus")
# B09 lies in a water-vapour absorption band (about 0.55 of B8A over land); B10 (1.375 µm) is
# absorbed by the vapour below clouds, so clear ground is near 0 and cloud tops are bright.
_TOA = {name: (0.55 * refl[8], 0.002) for name, refl in _E.items()}
_TOA["cloud"] = (0.42, 0.25)
#: ``(n_endmembers, 2)`` float32 reflectance of :data:`TOA_BANDS`.
TOA_SPECTRA = np.array([_TOA[k] for k in ENDMEMBERS], dtype=np.float32)
#: Atmospheric path reflectance added at the top of the atmosphere (clear mid-latitude summer
#: sky), per band of :data:`BANDS` then :data:`TOA_BANDS`: large in the blue, small in SWIR.
PATH_REFLECTANCE = np.array(
    [0.075, 0.055, 0.035, 0.020, 0.016, 0.013, 0.011, 0.009, 0.009, 0.003, 0.001, 0.004, 0.0],
    dtype=np.float32,
)
#: ``(n_endmembers, n_bands)`` float32 reflectance table.
SPECTRA = np.array([_E[k] for k in ENDMEMBERS], dtype=np.float32)
EM = {name: i for i, name in enumerate(ENDMEMBERS)}


# Phenology per crop: winter-crop overwinter cover, start of green-up (day of year), its
# steepness (days), start of senescence, its steepness, harvest day, maximum green cover.
_PHENOLOGY = {
    "wheat": (0.30, 85, 10.0, 180, 8.0, 212, 0.93),
    "maize": (0.00, 160, 9.0, 258, 9.0, 285, 0.95),
    "sugar_beet": (0.00, 145, 10.0, 270, 10.0, 295, 0.95),
    "rapeseed": (0.30, 75, 10.0, 162, 8.0, 198, 0.93),
}
_FLOWERING = (125.0, 11.0, 0.55)  # rapeseed: peak day, width (days), peak flower share


def phenology(crop: str, doy: float | None) -> tuple[float, float, float]:
    """Green cover, dry (senescent or stubble) cover and flower share of a healthy crop.

    ``doy=None`` is the peak-season snapshot (full green cover, nothing dry, no flowers).
    Before emergence and after harvest the field is (nearly) bare soil.
    """
    base, sos, k_up, eos, k_down, harvest, fmax = _PHENOLOGY[crop]
    if doy is None:
        return fmax, 0.0, 0.0
    if doy >= harvest:
        return 0.0, 0.15, 0.0  # stubble
    grown = fmax * (base + (1 - base) * _logistic((doy - sos) / k_up))
    green = grown * (1 - _logistic((doy - eos) / k_down))
    flowers = 0.0
    if crop == "rapeseed":
        peak, width, share = _FLOWERING
        flowers = share * math.exp(-(((doy - peak) / width) ** 2))
    return green, 0.85 * (grown - green), flowers


def _logistic(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))

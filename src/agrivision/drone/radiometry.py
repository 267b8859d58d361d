"""Radiance of MicaSense RedEdge band images from their raw DN.

The radiometric model is MicaSense's published one ("RedEdge Camera Radiometric Calibration
Model", MicaSense knowledge base; the same formulas drive their MIT-licensed
``imageprocessing`` repository). It is written here from the formulas, not copied::

    L = V(x, y) * a1 / g * (p - p_BL) / (t_e + a2 * y - a3 * t_e * y) / 2**bits

with ``p`` the raw DN, ``p_BL`` the black level (EXIF BlackLevel), ``g`` the gain (ISO/100),
``t_e`` the exposure time (s), ``y`` the pixel row, ``a1..a3`` the XMP RadiometricCalibration,
``V = 1 / (1 + k0 r + k1 r^2 + ... + k5 r^6)`` the vignetting correction around the XMP
VignettingCenter (``r`` in pixels) and ``bits`` the sample depth. ``L`` is spectral radiance in
W m^-2 sr^-1 nm^-1. Reflectance = ``L * rho_panel / mean L over the panel`` (panel method).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from agrivision.drone.metadata import BandMeta


def read_raw(meta: BandMeta) -> np.ndarray:
    """The raw DN image of a band (uint16, rows x cols)."""
    with Image.open(meta.path) as im:
        return np.array(im, dtype=np.uint16)


def vignetting(meta: BandMeta) -> np.ndarray:
    """Vignetting correction factor ``V(x, y)`` (float32, >= 1 away from the centre)."""
    rows, cols = meta.shape
    cx, cy = meta.vignetting_center
    y, x = np.ogrid[:rows, :cols]
    r = np.hypot(x - cx, y - cy)
    k = np.ones_like(r)
    for i, c in enumerate(meta.vignetting_poly, start=1):
        k += c * r**i
    return (1.0 / k).astype(np.float32)


def radiance(meta: BandMeta, raw: np.ndarray | None = None) -> np.ndarray:
    """Spectral radiance (W m^-2 sr^-1 nm^-1, float32) of one band, from its raw DN.

    Pixels at the sensor's saturation level (DN >= 2**bits - 16, e.g. 65520) are NaN.
    """
    raw = read_raw(meta) if raw is None else raw
    a1, a2, a3 = meta.radiometric_cal
    te, g = meta.exposure_s, meta.gain
    rows = np.arange(raw.shape[0], dtype=np.float64)[:, None]
    row_term = te + a2 * rows - a3 * te * rows  # row-wise readout (rolling shutter) gradient
    dn = np.clip(raw.astype(np.float64) - meta.black_level, 0, None)
    out = vignetting(meta) * (a1 / g) * dn / row_term / 2.0**meta.bits
    out[raw >= 2**meta.bits - 16] = np.nan
    return out.astype(np.float32)

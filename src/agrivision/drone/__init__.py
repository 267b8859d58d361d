"""Drone imagery: raw multispectral captures to calibrated, band-aligned reflectance."""

from agrivision.drone.align import Alignment, align_bands, phase_correlation
from agrivision.drone.micasense import (
    BandMeta,
    Calibration,
    Capture,
    calibrate,
    find_captures,
    find_panel,
    panel_factors,
    radiance,
    read_metadata,
    write_reflectance,
)

__all__ = [
    "Alignment",
    "BandMeta",
    "Calibration",
    "Capture",
    "align_bands",
    "calibrate",
    "find_captures",
    "find_panel",
    "panel_factors",
    "phase_correlation",
    "radiance",
    "read_metadata",
    "write_reflectance",
]

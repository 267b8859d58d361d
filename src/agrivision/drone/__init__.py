"""Drone imagery: raw multispectral captures to calibrated, band-aligned reflectance."""

from agrivision.drone.align import Alignment, align_bands, phase_correlation
from agrivision.drone.calibration import Calibration, calibrate, write_reflectance
from agrivision.drone.metadata import BandMeta, Capture, find_captures, read_metadata
from agrivision.drone.panel import find_panel, panel_factors
from agrivision.drone.radiometry import radiance

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

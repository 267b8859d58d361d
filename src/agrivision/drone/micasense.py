"""MicaSense RedEdge processing chain, one module per concept: :mod:`.metadata` (captures,
EXIF/XMP), :mod:`.radiometry` (raw DN to radiance), :mod:`.panel` (panel factors) and
:mod:`.calibration` (aligned reflectance and its GeoTIFF). Kept so that
``agrivision.drone.micasense`` imports keep working."""

from agrivision.drone.calibration import Calibration, calibrate, write_reflectance
from agrivision.drone.metadata import (
    PROFILE_ORDER,
    BandMeta,
    Capture,
    find_captures,
    read_metadata,
)
from agrivision.drone.panel import PanelRegion, find_panel, panel_factors
from agrivision.drone.radiometry import radiance, read_raw, vignetting

__all__ = [
    "PROFILE_ORDER",
    "BandMeta",
    "Calibration",
    "Capture",
    "PanelRegion",
    "calibrate",
    "find_captures",
    "find_panel",
    "panel_factors",
    "radiance",
    "read_metadata",
    "read_raw",
    "vignetting",
    "write_reflectance",
]

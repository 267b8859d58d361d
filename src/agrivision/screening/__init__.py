"""Screening image collections before analysis: quality per scene and date, duplicates, keep.

Everything is measured on decimated reads (overviews where the files have them), at most
``read.max_pixels`` pixels per band and scene: screening a collection costs a bounded amount
per scene, whatever the file sizes.
"""

from agrivision.screening.config import ScreenConfig, load_screen_config
from agrivision.screening.duplicates import dhash, find_duplicates, footprint_iou, hamming
from agrivision.screening.screen import COLUMNS, ScreenResult, keep_reasons, screen
from agrivision.screening.select import stac_item, write_selection

__all__ = [
    "COLUMNS",
    "ScreenConfig",
    "ScreenResult",
    "dhash",
    "find_duplicates",
    "footprint_iou",
    "hamming",
    "keep_reasons",
    "load_screen_config",
    "screen",
    "stac_item",
    "write_selection",
]

"""Screening settings: how much is read, what counts as a duplicate, which scenes are kept.

Defaults live here and in ``config/screen-default.yaml`` (a copy users edit); unknown keys and
impossible values are refused with a message that names the key.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agrivision.config import load_yaml, validate
from agrivision.masks import DEFAULT_EXCLUDE


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReadConfig(_Section):
    """Decimated reading: at most ``max_pixels`` pixels per band and scene (overviews used)."""

    max_pixels: int = Field(default=1024 * 1024, ge=64 * 64, le=16384 * 16384)


class MaskSection(_Section):
    """How quality bands decode, and the automatic mask without them (see
    :class:`agrivision.masks.MaskConfig` and :mod:`agrivision.masks.auto`)."""

    method: Literal["auto", "quality", "s2cloudless", "spectral", "off"] = "auto"
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    cloud_probability_threshold: float = Field(default=0.4, ge=0, le=1)


class QualityConfig(_Section):
    """Pixel-level quality measures."""

    #: DN at or above which a pixel is saturated; None: the integer type's ceiling (65520
    #: for uint16, covering 12-bit data scaled to 16 bit), unknown (NaN) for float data.
    saturation_level: float | None = None
    #: Frames without a CRS, or with pixels finer than this (metres), are drone imagery
    #: (the sharpness rule applies to them only).
    drone_max_pixel_m: float = Field(default=0.5, gt=0)


class DuplicatesConfig(_Section):
    """When two scenes are the same acquisition."""

    footprint_iou: float = Field(default=0.95, gt=0, le=1)
    hash_size: int = Field(default=16, ge=4, le=64)
    #: Largest Hamming distance (bits of the ``hash_size**2``-bit dHash) of near-identical
    #: content.
    hash_max_distance: int = Field(default=20, ge=0)
    #: Content duplicates must be at most this many days apart (None: dates ignored); two
    #: clear acquisitions of one place on different days can look alike but are not copies.
    max_days_apart: int | None = Field(default=0, ge=0)
    #: Content duplicates that are both georeferenced must overlap at least this much (IoU).
    content_min_iou: float = Field(default=0.5, ge=0, le=1)


class KeepConfig(_Section):
    """Rules of the ``keep`` column; a rule whose measure is unknown (NaN) does not apply."""

    min_valid_fraction: float | None = Field(default=0.5, ge=0, le=1)
    min_field_valid_fraction: float | None = Field(default=0.8, ge=0, le=1)
    max_cloud_fraction: float | None = Field(default=0.5, ge=0, le=1)
    max_nodata_fraction: float | None = Field(default=0.9, ge=0, le=1)
    max_saturation_fraction: float | None = Field(default=0.02, ge=0, le=1)
    #: Drone frames whose sharpness is below this share of the median drone frame's.
    min_relative_sharpness: float | None = Field(default=0.25, ge=0, le=1)
    drop_duplicates: bool = True


class ScreenConfig(_Section):
    """Everything ``agrivision screen`` needs besides the sources."""

    read: ReadConfig = ReadConfig()
    mask: MaskSection = MaskSection()
    quality: QualityConfig = QualityConfig()
    duplicates: DuplicatesConfig = DuplicatesConfig()
    keep: KeepConfig = KeepConfig()


def load_screen_config(path: str | os.PathLike | None = None) -> ScreenConfig:
    """Load a screening config YAML (``None``: the defaults).

    Raises
    ------
    ConfigError
        Unsafe or invalid YAML, unknown keys, out-of-range values.
    """
    data = load_yaml(path) if path is not None else {}
    if "screen" in data and len(data) == 1:  # a section pasted from a larger config
        data = data["screen"]
    return validate(ScreenConfig, data, path)

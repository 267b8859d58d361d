"""Sensor profiles as data: band ids to STAC common names, scale/offset, nodata, mask bands,
and the cloud detector used when a product ships no quality band (``cloud_mask:``).

Profiles ship as YAML files in ``agrivision/sensors/profiles``. Users add a sensor with a YAML
file of the same shape, passed by path (``sensor="my-camera.yaml"``) or placed in a folder
listed in the ``AGRIVISION_SENSOR_PATH`` environment variable (``os.pathsep``-separated).

How a sensor is recognised when none is given (:func:`detect_profile`) is declared in its
profile too (``detect:``), so a user's profile is detected the same way as a built-in one.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from agrivision.errors import ConfigError, SensorError

#: Quality bands that products ship (scene variable names: Sentinel-2 SCL, Landsat QA_PIXEL,
#: Fmask, cloud probability, binary cloud mask), then the one agrivision makes
#: (:mod:`agrivision.masks`). Data about bands, so the readers below ``masks`` know them.
PRODUCT_MASKS = ("scl", "qa_pixel", "fmask", "cloud_probability", "cloud_mask")
MASK_VARIABLES = (*PRODUCT_MASKS, "auto_mask")

PROFILE_DIR = Path(__file__).parent / "profiles"

MaskKind = Literal["scl", "qa_pixel", "fmask", "cloud_probability", "cloud_mask"]
#: Cloud detectors a profile can declare (see :mod:`agrivision.masks.auto`).
CloudDetector = Literal["s2cloudless", "spectral", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BandSpec(_Strict):
    """One band of a sensor: its STAC common name, centre wavelength (µm), native pixel size (m)."""

    common_name: str
    center_um: float | None = None
    resolution_m: float | None = None


class MaskSpec(_Strict):
    """A quality band shipped with the sensor's products (e.g. Sentinel-2 SCL)."""

    kind: MaskKind
    name: str
    resolution_m: float | None = None


class DetectRule(_Strict):
    """How a sensor is recognised from the text of its metadata.

    The hints are STAC Item properties (``platform``, ``constellation``, ``instruments``,
    ``processing:level``), the Item id, GeoTIFF tags ``SENSOR``, ``LEVEL`` and
    ``PRODUCT_TYPE`` and file names. Patterns are Python regular expressions, searched in each
    hint without regard to case; a pattern is met when some hint contains a match.
    """

    #: At least one of these must be met (no constraint when empty).
    any_of: tuple[str, ...] = ()
    #: Every one of these must be met.
    all_of: tuple[str, ...] = ()
    #: None of these may be met.
    none_of: tuple[str, ...] = ()
    #: When the rules of several profiles hold, the highest priority wins (then the name).
    priority: int = 0

    @model_validator(mode="after")
    def _valid(self) -> DetectRule:
        if not (self.any_of or self.all_of):
            raise ValueError("detect needs any_of or all_of patterns")
        for pattern in (*self.any_of, *self.all_of, *self.none_of):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from exc
        return self

    def matches(self, hints: Sequence[str]) -> bool:
        """True when ``hints`` meet every condition of the rule."""

        def met(pattern: str) -> bool:
            return any(re.search(pattern, h, re.IGNORECASE) for h in hints)

        return (
            (not self.any_of or any(met(p) for p in self.any_of))
            and all(met(p) for p in self.all_of)
            and not any(met(p) for p in self.none_of)
        )


class BaselineOffset(_Strict):
    """An additive offset that applies from a processing baseline (or acquisition date) on."""

    from_baseline: str
    offset: float
    since_date: dt.date


class SensorProfile(_Strict):
    """How to turn a sensor's stored values into reflectance (0..1) with named bands.

    ``reflectance = DN * scale + offset`` for integer data; float data are taken as
    reflectance already (never scaled twice).
    """

    name: str
    description: str = ""
    platform: str = ""
    aliases: tuple[str, ...] = ()
    scale: float = 1.0
    offset: float = 0.0
    baseline_offset: BaselineOffset | None = None
    nodata: float | None = None
    band_order: tuple[str, ...]
    bands: dict[str, BandSpec]
    masks: dict[str, MaskSpec] = {}
    #: Detector for imagery without a quality band: ``s2cloudless`` (Sentinel-2 TOA bands),
    #: ``spectral`` (brightness/whiteness/HOT test) or ``none`` (drones, below the clouds).
    cloud_mask: CloudDetector = "none"
    #: How to recognise the sensor's files when no sensor is given (None: by name only).
    detect: DetectRule | None = None

    @model_validator(mode="after")
    def _order_known(self) -> SensorProfile:
        unknown = [b for b in self.band_order if b not in self.bands]
        if unknown:
            raise ValueError(f"band_order names bands not under 'bands': {unknown}")
        return self

    def common_name(self, band_id: str) -> str | None:
        """Common name for a band id, a common name, or a mask band id (case-insensitive)."""
        key = band_id.strip().upper()
        for bid, spec in self.bands.items():
            if bid.upper() == key or spec.common_name.upper() == key:
                return spec.common_name
        for mid, mask in self.masks.items():
            if mid.upper() == key or mask.name.upper() == key:
                return mask.name
        return None

    def mask_spec(self, name: str) -> MaskSpec | None:
        """The mask spec whose output variable is ``name``, if any."""
        return next((m for m in self.masks.values() if m.name == name), None)

    def offset_for(self, baseline: str | None, date: dt.date | None) -> float:
        """The additive reflectance offset for a product's processing baseline or date.

        The baseline wins when known; otherwise the acquisition date decides (products made
        before the baseline change were not reprocessed consistently, so this is a fallback).
        """
        rule = self.baseline_offset
        if rule is None:
            return self.offset
        if baseline:
            applies = _version(baseline) >= _version(rule.from_baseline)
        elif date is not None:
            applies = date >= rule.since_date
        else:
            applies = False
        return rule.offset if applies else self.offset


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(text).replace("N", "").split(".") if p.isdigit())


def _search_dirs() -> list[Path]:
    extra = os.environ.get("AGRIVISION_SENSOR_PATH", "")
    return [Path(p) for p in extra.split(os.pathsep) if p] + [PROFILE_DIR]


def _parse(path: Path) -> SensorProfile:
    from agrivision.config import load_yaml  # same safe loader: no tags, few aliases, <1 MB

    try:
        data = load_yaml(path)
    except ConfigError as exc:
        raise SensorError(f"cannot read sensor profile: {exc.problem}", source=path) from exc
    try:
        return SensorProfile(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SensorError(
            f"invalid sensor profile: {where}: {first['msg']}",
            source=path,
            fix="see agrivision/sensors/profiles/*.yaml for the expected keys",
        ) from exc


@cache
def _catalogue(search: tuple[Path, ...]) -> dict[str, SensorProfile]:
    found: dict[str, SensorProfile] = {}
    for folder in reversed(search):  # earlier folders override the built-ins
        for path in sorted(folder.glob("*.y*ml")):
            prof = _parse(path)
            for key in (prof.name, *prof.aliases):
                found[key.lower()] = prof
    return found


def list_profiles() -> list[str]:
    """Names of all known sensor profiles (built-in and from ``AGRIVISION_SENSOR_PATH``)."""
    return sorted({p.name for p in _catalogue(tuple(_search_dirs())).values()})


def detect_profile(hints: Sequence[str]) -> SensorProfile | None:
    """The sensor profile that metadata hints point to, or None when unsure.

    Order of precedence: a hint that is exactly a profile name or alias (the first such hint
    wins: STAC ``agrivision:sensor``/``sensor`` properties come first, files agrivision wrote
    say so); else the profiles whose ``detect:`` rule holds (:class:`DetectRule`), highest
    ``priority`` first, then by name.

    Parameters
    ----------
    hints
        Metadata texts, see :class:`DetectRule`.
    """
    catalogue = _catalogue(tuple(_search_dirs()))
    for hint in hints:
        prof = catalogue.get(hint.strip().lower())
        if prof is not None:
            return prof
    rules = {p.name: (p.detect, p) for p in catalogue.values() if p.detect is not None}
    ranked = sorted(rules.values(), key=lambda rp: (-rp[0].priority, rp[1].name))
    return next((p for rule, p in ranked if rule.matches(hints)), None)


def load_profile(sensor: str | os.PathLike | SensorProfile) -> SensorProfile:
    """Return a sensor profile by name, alias or YAML path.

    Raises
    ------
    SensorError
        If the name is unknown (the message lists the known ones) or the file is invalid.
    """
    if isinstance(sensor, SensorProfile):
        return sensor
    text = str(sensor)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise SensorError("sensor profile file not found", source=path)
        return _parse(path)
    prof = _catalogue(tuple(_search_dirs())).get(text.lower())
    if prof is None:
        raise SensorError(
            f"unknown sensor {text!r}",
            fix=f"use one of {', '.join(list_profiles())} or a profile YAML path",
        )
    return prof

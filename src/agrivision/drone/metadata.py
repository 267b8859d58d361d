"""MicaSense RedEdge captures and their calibration metadata (EXIF and XMP).

A *capture* is one trigger of the camera: five single-band 16-bit TIFFs ``IMG_NNNN_B.tif``
(B = 1 blue, 2 green, 3 red, 4 NIR, 5 red edge) with the calibration in EXIF and XMP.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

from agrivision.errors import ResourceLimitError, SensorError, SourceError
from agrivision.limits import check_pixels

#: Order of the bands in calibrated stacks (the ``micasense-rededge`` sensor profile).
PROFILE_ORDER = ("blue", "green", "red", "nir", "rededge")
_XMP_NAME = {"Blue": "blue", "Green": "green", "Red": "red", "NIR": "nir", "Red edge": "rededge"}
_CAPTURE_NAME = re.compile(r"^(?P<capture>.+)_(?P<band>[1-5])\.tiff?$", re.IGNORECASE)
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"

# TIFF / EXIF tag numbers read below.
_BITS, _DATETIME, _XMP, _BLACK_LEVEL = 258, 306, 700, 50714
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_EXPOSURE, _ISO, _DATETIME_ORIGINAL, _SUBSEC = 33434, 34867, 36867, 37520
_FOCAL_PLANE_XRES = 41486


@dataclass(frozen=True)
class BandMeta:
    """Calibration metadata of one band image of a capture.

    Attributes
    ----------
    band
        STAC common name (``blue``, ``green``, ``red``, ``nir``, ``rededge``).
    black_level
        Dark DN subtracted before scaling (mean of the EXIF BlackLevel values).
    gain, exposure_s
        Sensor gain (ISO / 100) and exposure time in seconds.
    radiometric_cal
        ``(a1, a2, a3)`` of the radiance model.
    vignetting_center, vignetting_poly
        Centre ``(x, y)`` in pixels and coefficients ``k0..k5`` of ``1 + k0 r + ... + k5 r^6``.
    bits
        Bits per sample of the stored DN (16: 12-bit data scaled to 16 bit).
    focal_length_px, principal_point_px, distortion
        Pinhole camera (pixels) and Brown distortion ``(k1, k2, k3, p1, p2)``; None if absent.
    position
        ``(lat, lon, altitude_m)`` of the camera from EXIF GPS (WGS84, altitude above sea
        level), or None.
    panel_albedo
        Panel reflectance stored by newer firmware (XMP ``Albedo``), or None.
    """

    path: str
    band: str
    wavelength_nm: float
    shape: tuple[int, int]
    black_level: float
    gain: float
    exposure_s: float
    radiometric_cal: tuple[float, float, float]
    vignetting_center: tuple[float, float]
    vignetting_poly: tuple[float, ...]
    bits: int
    datetime: dt.datetime | None
    capture_id: str | None
    focal_length_px: float | None = None
    principal_point_px: tuple[float, float] | None = None
    distortion: tuple[float, ...] | None = None
    position: tuple[float, float, float] | None = None
    panel_albedo: float | None = None


@dataclass(frozen=True)
class Capture:
    """The band images of one camera trigger, keyed by common name."""

    name: str
    bands: Mapping[str, BandMeta]

    @property
    def datetime(self) -> dt.datetime | None:
        """Acquisition time (camera clock, usually UTC) of the first band."""
        return next(iter(self.bands.values())).datetime

    @property
    def position(self) -> tuple[float, float, float] | None:
        """Camera ``(lat, lon, altitude_m)`` from EXIF GPS, or None."""
        return next(iter(self.bands.values())).position


def read_metadata(path: str | os.PathLike) -> BandMeta:
    """Read the radiometric and geometric calibration of one MicaSense band TIFF.

    Raises
    ------
    SourceError
        The file cannot be opened as an image.
    SensorError
        The file lacks MicaSense calibration metadata (XMP RadiometricCalibration etc.).
    """
    p = str(path)
    try:
        with Image.open(p) as im:
            if not isinstance(im, TiffImagePlugin.TiffImageFile):
                raise SourceError(
                    f"not a TIFF ({im.format})", source=p, fix="pass the camera's original TIFFs"
                )
            tags = dict(im.tag_v2)
            exif = im.getexif()
            sub = dict(exif.get_ifd(_EXIF_IFD))
            gps = dict(exif.get_ifd(_GPS_IFD))
            shape = (im.height, im.width)
    except Image.DecompressionBombError as exc:  # PIL's own ceiling, below ours
        raise ResourceLimitError(
            f"image header claims too many pixels ({exc})", source=p, fix="check the file"
        ) from exc
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read image ({exc})", source=p) from exc
    # Frames are read whole (radiance, alignment): a header claiming more is refused now.
    check_pixels(shape, what="drone frame", source=p)
    xmp = _xmp_values(tags.get(_XMP))
    needed = ("RadiometricCalibration", "VignettingCenter", "VignettingPolynomial", "BandName")
    missing = [k for k in needed if k not in xmp]
    if missing or _EXPOSURE not in sub:
        raise SensorError(
            f"no MicaSense calibration metadata ({', '.join(missing) or 'ExposureTime'} missing)",
            source=p,
            fix="pass the camera's original TIFFs (metadata is lost when images are re-saved)",
        )
    black = tags.get(_BLACK_LEVEL)
    if black is None:  # old firmware: the masked dark rows stand in for the black level
        black = xmp.get("DarkRowValue")
    if black is None:
        raise SensorError("no BlackLevel (EXIF) nor DarkRowValue (XMP)", source=p)
    bits = tags.get(_BITS, 16)
    band_name = str(xmp["BandName"])
    px_per_mm = float(sub.get(_FOCAL_PLANE_XRES, 0) or 0)
    cal = _numbers(xmp, "RadiometricCalibration")
    centre = _numbers(xmp, "VignettingCenter")
    return BandMeta(
        path=p,
        band=_XMP_NAME.get(band_name, band_name.lower().replace(" ", "")),
        wavelength_nm=float(_text(xmp, "CentralWavelength") or np.nan),
        shape=shape,
        black_level=float(np.mean(np.atleast_1d(black).astype(float))),
        gain=float(sub.get(_ISO, 100)) / 100.0,
        exposure_s=float(sub[_EXPOSURE]),
        radiometric_cal=(cal[0], cal[1], cal[2]),
        vignetting_center=(centre[0], centre[1]),
        vignetting_poly=_numbers(xmp, "VignettingPolynomial"),
        bits=int(bits[0] if isinstance(bits, tuple) else bits),
        datetime=_datetime(sub.get(_DATETIME_ORIGINAL) or tags.get(_DATETIME), sub.get(_SUBSEC)),
        capture_id=_text(xmp, "CaptureId"),
        focal_length_px=_focal_px(xmp, px_per_mm),
        principal_point_px=_principal_px(xmp, px_per_mm),
        distortion=_numbers(xmp, "PerspectiveDistortion")
        if "PerspectiveDistortion" in xmp
        else None,
        position=_gps(gps),
        panel_albedo=float(str(xmp["Albedo"])) if "Albedo" in xmp else None,
    )


def find_captures(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Capture]:
    """Group MicaSense band files (``*_1.tif`` .. ``*_5.tif``) into captures.

    Parameters
    ----------
    sources
        Files, folders, or capture prefixes (``.../IMG_0001`` finds ``IMG_0001_*.tif``).

    Raises
    ------
    SourceError
        Nothing matches, or a capture lacks one of the five bands.
    """
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if _CAPTURE_NAME.match(q.name))
        elif p.is_file():
            files.append(p)
        else:
            files += sorted(p.parent.glob(f"{p.name}_[1-5].tif*"))
    groups: dict[str, dict[int, Path]] = {}
    for f in files:
        m = _CAPTURE_NAME.match(f.name)
        if m is None:
            raise SourceError(
                "not a MicaSense band file (expected NAME_1.tif .. NAME_5.tif)", source=f
            )
        groups.setdefault(str(f.parent / m["capture"]), {})[int(m["band"])] = f
    if not groups:
        raise SourceError(f"no MicaSense band files in {[str(i) for i in items]}")
    captures = []
    for name, by_index in sorted(groups.items()):
        if sorted(by_index) != [1, 2, 3, 4, 5]:
            raise SourceError(
                f"capture has bands {sorted(by_index)}, needs 1..5",
                source=name,
                fix="pass all five IMG_NNNN_1..5.tif files of the capture",
            )
        metas = [read_metadata(by_index[i]) for i in range(1, 6)]
        captures.append(Capture(Path(name).name, {m.band: m for m in metas}))
    return captures


Xmp = dict[str, str | list[str]]


def _text(xmp: Xmp, key: str) -> str | None:
    """A single XMP value (None when absent)."""
    value = xmp.get(key)
    return None if value is None else str(value)


def _numbers(xmp: Xmp, key: str) -> tuple[float, ...]:
    """An ``rdf:Seq`` XMP value as numbers."""
    value = xmp[key]
    return tuple(float(v) for v in (value if isinstance(value, list) else [value]))


def _xmp_values(raw: object) -> Xmp:
    """Local element name -> text, or list of texts for ``rdf:Seq`` values."""
    if raw is None:
        return {}
    if isinstance(raw, tuple):
        raw = b"".join(raw)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
    if start < 0 or end < 0:
        return {}
    root = ET.fromstring(text[start : end + len("</x:xmpmeta>")])
    out: Xmp = {}
    for desc in root.iter(f"{_RDF}Description"):
        for key, value in desc.attrib.items():  # compact form: values as attributes
            out.setdefault(key.split("}")[-1], value)
        for child in desc:
            name = child.tag.split("}")[-1]
            items = [li.text or "" for li in child.iter(f"{_RDF}li")]
            out.setdefault(name, items if items else (child.text or "").strip())
    return out


def _focal_px(xmp: dict, px_per_mm: float) -> float | None:
    if "PerspectiveFocalLength" not in xmp:
        return None
    f = float(xmp["PerspectiveFocalLength"])
    # Newer firmware states millimetres (PerspectiveFocalLengthUnits); older stored pixels.
    units = str(xmp.get("PerspectiveFocalLengthUnits", "mm" if f < 100 else "px"))
    return f * px_per_mm if units == "mm" and px_per_mm else f


def _principal_px(xmp: dict, px_per_mm: float) -> tuple[float, float] | None:
    if "PrincipalPoint" not in xmp or not px_per_mm:
        return None
    x_mm, y_mm = (float(v) for v in str(xmp["PrincipalPoint"]).split(","))
    return (x_mm * px_per_mm, y_mm * px_per_mm)


def _datetime(text: object, subsec: object) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = dt.datetime.strptime(str(text).strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if subsec and str(subsec).strip().isdigit():
        digits = str(subsec).strip()
        when += dt.timedelta(seconds=int(digits) / 10 ** len(digits))
    return when


def _gps(gps: dict) -> tuple[float, float, float] | None:
    if 2 not in gps or 4 not in gps:
        return None

    def degrees(dms: Sequence, ref: str, negative: str) -> float:
        d, m, s = (float(v) for v in dms)
        value = d + m / 60 + s / 3600
        return -value if str(ref).upper().startswith(negative) else value

    lat = degrees(gps[2], gps.get(1, "N"), "S")
    lon = degrees(gps[4], gps.get(3, "E"), "W")
    alt = float(gps.get(6, np.nan))
    if gps.get(5) in (b"\x01", 1):
        alt = -alt
    return (lat, lon, alt)

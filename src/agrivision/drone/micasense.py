"""MicaSense RedEdge raw captures: metadata, radiance, calibration panel, reflectance.

A *capture* is one trigger of the camera: five single-band 16-bit TIFFs ``IMG_NNNN_B.tif``
(B = 1 blue, 2 green, 3 red, 4 NIR, 5 red edge) with the calibration in EXIF and XMP.

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

import datetime as dt
import logging
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from scipy import ndimage

from agrivision.drone.align import Alignment, align_bands, undistort
from agrivision.errors import ResourceLimitError, SensorError, SourceError
from agrivision.io.atomic import atomic_path
from agrivision.limits import check_pixels

logger = logging.getLogger(__name__)

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
    return BandMeta(
        path=p,
        band=_XMP_NAME.get(band_name, band_name.lower().replace(" ", "")),
        wavelength_nm=float(xmp.get("CentralWavelength", np.nan)),
        shape=shape,
        black_level=float(np.mean(np.atleast_1d(black).astype(float))),
        gain=float(sub.get(_ISO, 100)) / 100.0,
        exposure_s=float(sub[_EXPOSURE]),
        radiometric_cal=tuple(float(v) for v in xmp["RadiometricCalibration"][:3]),
        vignetting_center=tuple(float(v) for v in xmp["VignettingCenter"][:2]),
        vignetting_poly=tuple(float(v) for v in xmp["VignettingPolynomial"]),
        bits=int(bits[0] if isinstance(bits, tuple) else bits),
        datetime=_datetime(sub.get(_DATETIME_ORIGINAL) or tags.get(_DATETIME), sub.get(_SUBSEC)),
        capture_id=xmp.get("CaptureId"),
        focal_length_px=_focal_px(xmp, px_per_mm),
        principal_point_px=_principal_px(xmp, px_per_mm),
        distortion=tuple(float(v) for v in xmp["PerspectiveDistortion"])
        if "PerspectiveDistortion" in xmp
        else None,
        position=_gps(gps),
        panel_albedo=float(xmp["Albedo"]) if "Albedo" in xmp else None,
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


@dataclass(frozen=True)
class PanelRegion:
    """Where the calibration panel was measured in one band image.

    ``rows``/``cols`` are half-open pixel ranges of the panel's bounding box; ``mask`` the
    pixels used (the detected panel, eroded away from its edges).
    """

    rows: tuple[int, int]
    cols: tuple[int, int]
    mask: np.ndarray
    mean_radiance: float
    std_radiance: float


def find_panel(
    rad: np.ndarray, *, window: tuple[int, int, int, int] | None = None, margin: float = 0.15
) -> PanelRegion:
    """Locate the calibration panel in a radiance image and measure its mean radiance.

    Parameters
    ----------
    rad
        Radiance image of the panel capture (one band).
    window
        ``(row0, row1, col0, col1)`` of the panel given by the user (half-open); skips
        detection.
    margin
        Share of the panel's size removed at each edge before averaging (edges blur and
        carry the panel's frame).

    Notes
    -----
    Detection: the panel is the largest bright (above Otsu's threshold), locally uniform
    (coefficient of variation < 5 % in 9 x 9 windows), nearly square connected region that
    covers less than a quarter of the frame. The QR code and the printed instructions beside
    it are bright too but not uniform.

    Raises
    ------
    SourceError
        No panel-like region is found.
    """
    rows, cols = rad.shape
    if window is not None:
        r0, r1, c0, c1 = window
        mask = np.zeros(rad.shape, bool)
        mask[r0:r1, c0:c1] = True
    else:
        img = np.nan_to_num(rad, nan=0.0).astype(np.float64)
        mean = ndimage.uniform_filter(img, 9)
        sq = ndimage.uniform_filter(img * img, 9)
        cv = np.sqrt(np.clip(sq - mean * mean, 0, None)) / np.maximum(mean, 1e-12)
        candidate = (img > _otsu(img)) & (cv < 0.05)
        labels, _ = ndimage.label(ndimage.binary_opening(candidate, iterations=2))
        best, best_area = None, 0
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            area = int((labels[sl] == i).sum())
            squareish = 0.6 < h / w < 1.6 and area > 0.75 * h * w
            small = area < 0.25 * rows * cols  # a panel fills a small part of the frame
            if squareish and small and area > best_area and area > 400:
                best, best_area = (sl, i), area
        if best is None:
            raise SourceError(
                "no calibration panel found (no large, bright, uniform square)",
                fix="pass the panel window (--panel-window ROW0,ROW1,COL0,COL1)",
            )
        sl, i = best
        mask = labels == i
        r0, r1, c0, c1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
    shrink = max(1, round(margin * min(r1 - r0, c1 - c0)))
    inner = np.zeros_like(mask)
    inner[r0 + shrink : r1 - shrink, c0 + shrink : c1 - shrink] = True
    use = mask & inner & np.isfinite(rad)
    if use.sum() < 25:
        raise SourceError("panel region has fewer than 25 usable pixels", fix="check the window")
    vals = rad[use]
    return PanelRegion(
        rows=(int(r0), int(r1)),
        cols=(int(c0), int(c1)),
        mask=use,
        mean_radiance=float(vals.mean()),
        std_radiance=float(vals.std()),
    )


def panel_factors(
    panel: Capture,
    reflectance: Mapping[str, float] | None = None,
    *,
    windows: Mapping[str, tuple[int, int, int, int]] | None = None,
) -> dict[str, tuple[float, PanelRegion]]:
    """Radiance-to-reflectance factor per band from a capture of a calibrated panel.

    Parameters
    ----------
    panel
        Capture of the panel (flat, filling a few percent of the frame, no shadow on it).
    reflectance
        Panel reflectance per band (0..1, from the panel's calibration card). Falls back to
        the XMP ``Albedo`` of newer firmware.
    windows
        Optional panel window per band (see :func:`find_panel`).

    Returns
    -------
    dict
        Band -> ``(factor, region)`` with ``reflectance = radiance * factor``.

    Raises
    ------
    SensorError
        A band has no panel reflectance.
    """
    out = {}
    for band, meta in panel.bands.items():
        rho = (reflectance or {}).get(band, meta.panel_albedo)
        if rho is None:
            raise SensorError(
                f"no panel reflectance for band {band}",
                source=panel.name,
                fix="pass --panel-reflectance blue,green,red,nir,rededge (from the panel's card)",
            )
        region = find_panel(radiance(meta), window=(windows or {}).get(band))
        out[band] = (float(rho) / region.mean_radiance, region)
    return out


def _otsu(img: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(img, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between))])


def _xmp_values(raw: object) -> dict[str, object]:
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
    out: dict[str, object] = {}
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


@dataclass(frozen=True)
class Calibration:
    """A calibrated capture and how it was obtained.

    Attributes
    ----------
    reflectance
        Dataset of float32 reflectance bands in profile order (blue, green, red, nir,
        rededge), dims ``(y, x)`` in pixels of the reference band's (undistorted) frame, NaN
        outside the five bands' overlap and where a band saturated. No CRS: a single frame
        is not georeferenced (see :func:`write_reflectance`).
    factors
        Radiance-to-reflectance factor per band (sr nm m^2 W^-1).
    panel
        The panel region measured per band in the panel capture.
    alignment
        :class:`~agrivision.drone.align.Alignment` per band (mapping and residual in px).
    """

    reflectance: xr.Dataset
    factors: dict[str, float]
    panel: dict[str, PanelRegion]
    alignment: dict[str, Alignment]


def calibrate(
    capture: Capture,
    panel: Capture,
    panel_reflectance: Mapping[str, float] | None = None,
    *,
    panel_windows: Mapping[str, tuple[int, int, int, int]] | None = None,
    reference: str = "red",
    undistort_lens: bool = True,
    affine: bool = True,
) -> Calibration:
    """Raw capture -> band-aligned surface reflectance with the panel method.

    Parameters
    ----------
    capture
        The capture to calibrate (see :func:`find_captures`).
    panel
        A capture of the calibrated reflectance panel taken in the same light.
    panel_reflectance
        Panel reflectance per band (0..1) from the panel's calibration card; defaults to
        the XMP ``Albedo`` when the firmware stored it.
    panel_windows
        Optional panel window per band ``(row0, row1, col0, col1)``; default: detected.
    reference
        Band onto whose grid the others are aligned.
    undistort_lens
        Remove each band's lens distortion (metadata Brown model) before aligning; the
        output is then the reference band's ideal pinhole frame.
    affine
        Affine band-to-band mapping (else translation only).
    """
    factors = panel_factors(panel, panel_reflectance, windows=panel_windows)
    ref_meta = capture.bands[reference] if reference in capture.bands else None
    bands = {}
    for name in PROFILE_ORDER:
        meta = capture.bands[name]
        refl = radiance(meta) * np.float32(factors[name][0])
        if undistort_lens and ref_meta is not None and _has_lens(meta) and _has_lens(ref_meta):
            refl = undistort(
                refl,
                focal_px=meta.focal_length_px,
                principal_px=meta.principal_point_px,
                distortion=meta.distortion,
                target_focal_px=ref_meta.focal_length_px,
                target_principal_px=ref_meta.principal_point_px,
            )
        bands[name] = refl
    aligned, report = align_bands(bands, reference, affine=affine)
    overlap = np.logical_and.reduce([np.isfinite(aligned[n]) for n in PROFILE_ORDER])
    rows, cols = overlap.shape
    data = {
        n: xr.DataArray(np.where(overlap, aligned[n], np.nan).astype(np.float32), dims=("y", "x"))
        for n in PROFILE_ORDER
    }
    ds = xr.Dataset(data, coords={"y": np.arange(rows), "x": np.arange(cols)})
    ds.attrs.update(
        sensor="micasense-rededge",
        capture=capture.name,
        panel_capture=panel.name,
        georeferenced="no",
        reference_band=reference,
    )
    if capture.datetime is not None:
        ds.attrs["datetime"] = capture.datetime.isoformat()
    if capture.position is not None:
        ds.attrs["position"] = list(capture.position)
    return Calibration(
        reflectance=ds,
        factors={n: f for n, (f, _) in factors.items()},
        panel={n: region for n, (_, region) in factors.items()},
        alignment=report,
    )


def write_reflectance(
    calibration: Calibration, path: str | os.PathLike, *, overwrite: bool = True
) -> Path:
    """Write a calibrated capture as a 5-band float32 GeoTIFF (atomically).

    Bands in ``micasense-rededge`` profile order with band descriptions = common names;
    tags ``SENSOR=micasense-rededge``, ``DATETIME``, the panel factors, the alignment
    residuals and, since a single frame has no map coordinates, ``GEOREFERENCED=no`` (with
    the camera's GPS position as ``GPS_LATITUDE``/``GPS_LONGITUDE``/``GPS_ALTITUDE`` when
    known). Nodata is NaN. Georeferencing a frame needs heading and ground height that
    the metadata does not give: mosaic the captures with a photogrammetry tool for maps.
    """
    ds = calibration.reflectance
    rows, cols = ds.sizes["y"], ds.sizes["x"]
    tags = {
        "SENSOR": "micasense-rededge",
        "GEOREFERENCED": "no",
        "NOTE": "single camera frame: pixel coordinates only, no CRS",
        "CAPTURE": ds.attrs.get("capture", ""),
        "PANEL_CAPTURE": ds.attrs.get("panel_capture", ""),
        "REFERENCE_BAND": ds.attrs.get("reference_band", ""),
    }
    if "datetime" in ds.attrs:
        tags["DATETIME"] = ds.attrs["datetime"]
    profile = dict(
        driver="GTiff",
        width=cols,
        height=rows,
        count=len(PROFILE_ORDER),
        dtype="float32",
        nodata=np.nan,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=3,
    )
    with atomic_path(path, overwrite=overwrite) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                for i, name in enumerate(PROFILE_ORDER, start=1):
                    dst.write(ds[name].to_numpy(), i)
                    dst.set_band_description(i, name)
                    align = calibration.alignment[name]
                    dst.update_tags(
                        i,
                        PANEL_FACTOR=f"{calibration.factors[name]:.6g}",
                        ALIGN_RESIDUAL_MEDIAN_PX=f"{align.residual_median_px:.3f}",
                        ALIGN_RESIDUAL_MAX_PX=f"{align.residual_max_px:.3f}",
                    )
                dst.update_tags(**tags, **_position_tags(ds))
    logger.warning("%s is not georeferenced (single MicaSense frame, pixel grid only)", path)
    return Path(path)


def _position_tags(ds: xr.Dataset) -> dict[str, str]:
    pos = ds.attrs.get("position")
    if not pos:
        return {}
    lat, lon, alt = pos
    return {
        "GPS_LATITUDE": f"{lat:.7f}",
        "GPS_LONGITUDE": f"{lon:.7f}",
        "GPS_ALTITUDE": f"{alt:.2f}",
    }


def _has_lens(meta: BandMeta) -> bool:
    return None not in (meta.focal_length_px, meta.principal_point_px, meta.distortion)

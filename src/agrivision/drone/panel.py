"""The calibrated reflectance panel: where it is in a frame and the radiance-to-reflectance
factor it gives per band (panel method: ``reflectance = radiance * rho_panel / mean panel
radiance``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from agrivision.drone.metadata import Capture
from agrivision.drone.radiometry import radiance
from agrivision.errors import SensorError, SourceError


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

"""A raw MicaSense capture to band-aligned surface reflectance, and its GeoTIFF."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from agrivision.drone.align import Alignment, align_bands, undistort
from agrivision.drone.metadata import PROFILE_ORDER, BandMeta, Capture
from agrivision.drone.panel import PanelRegion, panel_factors
from agrivision.drone.radiometry import radiance
from agrivision.io.geotiff import geotiff_writer

logger = logging.getLogger(__name__)


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
        lens = _lens(meta)
        ref_lens = _lens(ref_meta) if ref_meta is not None else None
        if undistort_lens and lens is not None and ref_lens is not None:
            refl = undistort(
                refl,
                focal_px=lens[0],
                principal_px=lens[1],
                distortion=lens[2],
                target_focal_px=ref_lens[0],
                target_principal_px=ref_lens[1],
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
    band_tags = [
        {
            "PANEL_FACTOR": f"{calibration.factors[name]:.6g}",
            "ALIGN_RESIDUAL_MEDIAN_PX": f"{calibration.alignment[name].residual_median_px:.3f}",
            "ALIGN_RESIDUAL_MAX_PX": f"{calibration.alignment[name].residual_max_px:.3f}",
        }
        for name in PROFILE_ORDER
    ]
    with geotiff_writer(
        path,
        count=len(PROFILE_ORDER),
        height=ds.sizes["y"],
        width=ds.sizes["x"],
        dtype="float32",
        nodata=np.nan,
        predictor=3,
        blocksize=256,
        descriptions=PROFILE_ORDER,
        tags={**tags, **_position_tags(ds)},
        band_tags=band_tags,
        overwrite=overwrite,
    ) as writer:
        for i, name in enumerate(PROFILE_ORDER, start=1):
            writer.dataset.write(ds[name].to_numpy(), i)
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


def _lens(meta: BandMeta) -> tuple[float, tuple[float, float], tuple[float, ...]] | None:
    """Focal length (px), principal point (px) and distortion, None unless all are known."""
    f, pp, k = meta.focal_length_px, meta.principal_point_px, meta.distortion
    return None if f is None or pp is None or k is None else (f, pp, k)

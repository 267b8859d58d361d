"""Per-scene quality measures on a decimated read: nodata, clouds, saturation, sharpness.

Definitions (all on the decimated grid of :class:`~agrivision.screening.scenes.Reader`):

- ``nodata_fraction``: pixels where any measurement band equals the file's nodata value (or
  is NaN) or a quality band says nodata, over all pixels.
- ``cloud_fraction`` / ``shadow_fraction``: pixels a quality band flags cloud or cirrus /
  cloud shadow, over the pixels that are not nodata. NaN (unknown, not 0) when the scene has
  no quality band that can say so (a cloud-mask-only scene has no shadow information).
- ``valid_fraction``: pixels usable by :func:`agrivision.masks.valid_mask` (no nodata, no
  excluded category), over all pixels; ``field_valid_fraction`` the same within the fields.
- ``saturation_fraction``: non-nodata pixels where any band is at the saturation level (or a
  quality band says saturated), NaN when unknown (float data without a configured level).
- ``sharpness``: variance of the Laplacian of the grey image (mean of the bands, each
  stretched to its 1st..99th percentile): unitless, comparable between frames of one camera.
- ``hash``: dHash of the grey image (see :mod:`agrivision.screening.duplicates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from rasterio.transform import Affine
from scipy import ndimage

from agrivision.masks import MASK_VARIABLES, MaskConfig, categories, valid_mask
from agrivision.screening.duplicates import dhash

#: Saturation DN by integer type: uint16 sensors often store 12-bit data scaled to 16 bits,
#: whose ceiling is 65520 (4095 * 16).
SATURATION_DN = {"uint8": 255, "uint16": 65520}


@dataclass
class Quality:
    """Quality measures of one scene (fractions 0..1, NaN = unknown)."""

    nodata_fraction: float
    valid_fraction: float
    cloud_fraction: float
    shadow_fraction: float
    saturation_fraction: float
    sharpness: float
    hash: np.ndarray | None
    field_valid_fraction: float = float("nan")


def measure(
    arrays: dict[str, list[np.ndarray]],
    nodata: dict[str, float | None],
    *,
    mask_config: MaskConfig,
    saturation_level: float | None = None,
    dtypes: dict[str, str] | None = None,
    hash_size: int = 16,
    fields: np.ndarray | None = None,
) -> Quality:
    """Quality of one scene from its decimated layers.

    Parameters
    ----------
    arrays
        ``{var: [2-D arrays]}`` from :meth:`Reader.read`: measurement bands under
        ``"data"``, quality bands under their variable name (``scl``, ``cloud_mask``...).
    nodata
        Nodata value per variable (None: none declared).
    mask_config
        Which categories make a pixel unusable, and the cloud-probability threshold.
    saturation_level
        DN at or above which a measurement is saturated; None: by dtype (see
        :data:`SATURATION_DN`).
    dtypes
        Source dtype per variable (for the default saturation level).
    hash_size
        dHash edge (``hash_size**2`` bits).
    fields
        Boolean mask of the fields on the decimated grid, or None.
    """
    data = arrays.get("data", [])
    shape = next(iter(arrays.values()))[0].shape
    ds = xr.Dataset()
    missing = np.zeros(shape, bool)
    saturated = np.zeros(shape, bool)
    level = saturation_level
    if level is None and dtypes and "data" in dtypes:
        level = SATURATION_DN.get(dtypes["data"])
    floats = []
    for i, band in enumerate(data):
        f = band.astype(np.float32)
        bad = ~np.isfinite(f)
        fill = nodata.get("data")
        if fill is not None and not np.isnan(fill):
            bad |= band == fill
        f[bad] = np.nan
        missing |= bad
        if level is not None:
            saturated |= (band >= level) & ~bad
        ds[f"b{i}"] = (("y", "x"), f)
        floats.append(f)
    for var in MASK_VARIABLES:
        for j, band in enumerate(arrays.get(var, [])):
            if j == 0:
                ds[var] = (("y", "x"), band)
            if nodata.get(var) is not None:
                missing |= band == nodata[var]
    cats = {k: v.to_numpy() for k, v in categories(ds, mask_config).items()}
    if "nodata" in cats:
        missing |= cats["nodata"]
    present = ~missing
    n_present = int(present.sum())

    def share(flag: np.ndarray | None) -> float:
        if flag is None or n_present == 0:
            return float("nan")
        return float((flag & present).sum() / n_present)

    has_quality = any(v in arrays for v in MASK_VARIABLES)
    cloud = None
    if has_quality:
        cloud = np.zeros(shape, bool)
        for name in ("cloud", "cirrus"):
            if name in cats:
                cloud |= cats[name]
    if "saturated" in cats:  # e.g. Sentinel-2 SCL class 1
        saturated |= cats["saturated"]
    saturation_known = level is not None or "saturated" in cats
    valid = valid_mask(ds, mask_config).to_numpy() & present
    field_valid = float("nan")
    if fields is not None and fields.any():
        field_valid = float((valid & fields).sum() / fields.sum())
    grey = _grey(floats, present) if floats else None
    return Quality(
        nodata_fraction=float(missing.mean()),
        valid_fraction=float(valid.mean()),
        cloud_fraction=share(cloud),
        shadow_fraction=share(cats.get("shadow")) if "shadow" in cats else float("nan"),
        saturation_fraction=share(saturated) if saturation_known else float("nan"),
        sharpness=sharpness(grey) if grey is not None else float("nan"),
        hash=dhash(grey, hash_size) if grey is not None and present.mean() >= 0.5 else None,
        field_valid_fraction=field_valid,
    )


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian of a grey image in 0..1 (NaN pixels ignored).

    Blur removes high frequencies, so a blurred frame scores lower than a sharp frame of the
    same scene; absolute values depend on the scene and the sampling.
    """
    finite = np.isfinite(grey)
    if finite.sum() < 9:
        return float("nan")
    filled = np.where(finite, grey, np.nanmedian(grey))
    lap = ndimage.laplace(filled.astype(np.float64))
    inner = ndimage.binary_erosion(finite, iterations=1)  # no edges from NaN borders
    return float(lap[inner].var()) if inner.any() else float("nan")


def fields_mask(
    geometries, transform: Affine, full_shape: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """Rasterise field polygons (in the scene's CRS) on a decimated grid of the scene."""
    from rasterio.features import geometry_mask

    rows, cols = full_shape
    t = transform @ Affine.scale(cols / shape[1], rows / shape[0])
    geoms = [g for g in geometries if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(shape, bool)
    return geometry_mask(geoms, out_shape=shape, transform=t, invert=True)


def _grey(bands: list[np.ndarray], present: np.ndarray) -> np.ndarray | None:
    """Mean of the bands, each stretched to its 1..99 % range; NaN where not present."""
    acc = np.zeros(present.shape, np.float64)
    used = 0
    for b in bands:
        vals = b[present & np.isfinite(b)]
        if vals.size < 16:
            continue
        lo, hi = np.percentile(vals, [1, 99])
        if hi <= lo:
            continue
        acc += np.clip((b - lo) / (hi - lo), 0, 1)
        used += 1
    if not used:
        return None
    grey = acc / used
    grey[~present] = np.nan
    return grey

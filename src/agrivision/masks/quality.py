"""Cloud, shadow, snow, water and nodata masks decoded from quality bands.

Every quality band is decoded into *categories* (``nodata, saturated, cloud, shadow, cirrus,
snow, water``); a :class:`MaskConfig` says which categories make a pixel unusable. Supported
quality bands (scene variable names): Sentinel-2 ``scl`` (scene classification), Landsat
Collection 2 ``qa_pixel`` (bit flags), ``fmask`` (Fmask codes), ``cloud_probability``
(e.g. s2cloudless, 0..1 or 0..100), a binary ``cloud_mask`` (1 = cloud) and ``auto_mask``,
the codes of :mod:`agrivision.masks.auto` (0 clear, 1 cloud, 2 shadow) for imagery without any.
All functions are lazy: they build dask graphs and never compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from agrivision.sensors import MASK_VARIABLES

#: Sentinel-2 L2A scene classification codes per category.
SCL_CLASSES: dict[str, tuple[int, ...]] = {
    "nodata": (0,),
    "saturated": (1,),
    "dark": (2,),
    "shadow": (3,),
    "cloud": (8, 9),
    "cirrus": (10,),
    "snow": (11,),
    "water": (6,),
}
#: Fmask codes per category (0 clear land, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill).
FMASK_CLASSES: dict[str, tuple[int, ...]] = {
    "nodata": (255,),
    "water": (1,),
    "shadow": (2,),
    "snow": (3,),
    "cloud": (4,),
}
#: Landsat Collection 2 QA_PIXEL bit numbers per category.
QA_PIXEL_BITS: dict[str, tuple[int, ...]] = {
    "nodata": (0,),
    "cloud": (1, 3),  # dilated cloud, cloud
    "cirrus": (2,),
    "shadow": (4,),
    "snow": (5,),
    "water": (7,),
}
#: Codes of the ``auto_mask`` variable that :mod:`agrivision.masks.auto` adds.
AUTO_CLASSES: dict[str, tuple[int, ...]] = {"cloud": (1,), "shadow": (2,)}
DEFAULT_EXCLUDE = ("nodata", "saturated", "cloud", "shadow", "cirrus", "snow")


@dataclass(frozen=True)
class MaskConfig:
    """Which categories make a pixel unusable, and how quality bands map to categories.

    Parameters
    ----------
    exclude
        Categories that are masked. Water is kept by default: it is a valid observation,
        and fields rarely contain it; add ``"water"`` (or ``"dark"`` for SCL 2) to mask it.
    scl_classes, fmask_classes, qa_pixel_bits
        Code (or bit) tables per category; override to follow another convention.
    cloud_probability_threshold
        Probability (0..1) at or above which a pixel is cloud. Integer probability bands
        are taken as percent (0..100), float bands as 0..1; also the threshold of the
        s2cloudless detector.
    method
        ``auto`` (a quality band when the scene has one, else the detector the sensor profile
        declares), ``quality``, ``s2cloudless`` or ``spectral``; see
        :mod:`agrivision.masks.auto`.
    detect_resolution_m
        Grid (metres) on which clouds are detected and shadows projected; the mask is then
        brought back to the scene's grid.
    average_over, dilation_size
        s2cloudless post-processing radii in pixels of the detection grid (probability
        smoothing, then dilation of the cloud mask; the spectral test uses the dilation only).
    cloud_heights_m
        Lowest and highest cloud height (m) along which shadows are searched.
    shadow_nir_max, shadow_swir_max
        A shadow candidate is a shadow where NIR reflectance is below ``shadow_nir_max`` and
        SWIR 1.6 µm (when the scene has it) below ``shadow_swir_max``.
    """

    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    scl_classes: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: dict(SCL_CLASSES))
    fmask_classes: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: dict(FMASK_CLASSES)
    )
    qa_pixel_bits: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: dict(QA_PIXEL_BITS)
    )
    cloud_probability_threshold: float = 0.4
    method: str = "auto"
    detect_resolution_m: float = 60.0
    average_over: int = 2
    dilation_size: int = 1
    cloud_heights_m: tuple[float, float] = (200.0, 3000.0)
    shadow_nir_max: float = 0.15
    shadow_swir_max: float = 0.12


def categories(scene: xr.Dataset, config: MaskConfig | None = None) -> dict[str, xr.DataArray]:
    """Boolean (lazy) per-category masks decoded from every quality band of ``scene``.

    Returns
    -------
    dict
        Category name -> boolean DataArray on the scene's grid (True = pixel in category).
        Categories absent from all quality bands are absent from the dict.
    """
    config = config or MaskConfig()
    out: dict[str, xr.DataArray] = {}

    def add(name: str, flag: xr.DataArray) -> None:
        out[name] = out[name] | flag if name in out else flag

    if "scl" in scene:
        for cat, codes in config.scl_classes.items():
            add(cat, scene["scl"].isin(list(codes)))
    if "fmask" in scene:
        for cat, codes in config.fmask_classes.items():
            add(cat, scene["fmask"].isin(list(codes)))
    if "qa_pixel" in scene:
        qa = scene["qa_pixel"].astype(np.uint16)
        for cat, bits in config.qa_pixel_bits.items():
            bitmask = sum(1 << b for b in bits)
            add(cat, (qa & bitmask) != 0)
    if "cloud_probability" in scene:
        prob = scene["cloud_probability"]
        threshold = config.cloud_probability_threshold
        if np.issubdtype(prob.dtype, np.integer):  # e.g. Sentinel-2 MSK_CLDPRB, 0..100 %
            threshold *= 100
        add("cloud", prob >= threshold)
    if "cloud_mask" in scene:
        add("cloud", scene["cloud_mask"] == 1)
    if "auto_mask" in scene:
        for cat, codes in AUTO_CLASSES.items():
            add(cat, scene["auto_mask"].isin(list(codes)))
    return out


def reflectance_bands(scene: xr.Dataset) -> list[str]:
    """Names of the reflectance variables (everything that is not a quality band)."""
    return [str(v) for v in scene.data_vars if v not in MASK_VARIABLES]


def valid_mask(scene: xr.Dataset, config: MaskConfig | None = None) -> xr.DataArray:
    """Lazy boolean mask, True where a pixel is usable.

    A pixel is usable when every reflectance band is finite and no quality band puts it in
    an excluded category. Dims follow the scene: ``(y, x)`` or ``(time, y, x)``.
    """
    config = config or MaskConfig()
    bands = reflectance_bands(scene)
    if bands:
        valid = _finite(scene[bands[0]])
        for b in bands[1:]:
            valid = valid & _finite(scene[b])
    else:
        ref = next(iter(scene.data_vars.values()))
        valid = xr.ones_like(ref, dtype=bool)
    cats = categories(scene, config)
    for name in config.exclude:
        if name in cats:
            valid = valid & ~cats[name]
    return valid.rename("valid")


def apply_mask(scene: xr.Dataset, config: MaskConfig | None = None) -> xr.Dataset:
    """Return ``scene`` with reflectance set to NaN wherever :func:`valid_mask` is False.

    Quality bands are kept unchanged so that later steps can still tell clouds from nodata.
    """
    valid = valid_mask(scene, config)
    out = scene.copy()
    for name in reflectance_bands(scene):
        out[name] = scene[name].where(valid)
    out.attrs["masked"] = ",".join((config or MaskConfig()).exclude)
    return out


def cloud_fraction(scene: xr.Dataset, config: MaskConfig | None = None) -> xr.DataArray:
    """Lazy share (0..1) of pixels flagged cloud, cirrus or shadow, per date if any.

    Pixels flagged nodata are left out of the denominator.
    """
    cats = categories(scene, config)
    flagged = None
    for name in ("cloud", "cirrus", "shadow"):
        if name in cats:
            flagged = cats[name] if flagged is None else flagged | cats[name]
    ref = next(iter(scene.data_vars.values()))
    if flagged is None:
        flagged = xr.zeros_like(ref, dtype=bool)
    present = ~cats["nodata"] if "nodata" in cats else xr.ones_like(ref, dtype=bool)
    return ((flagged & present).sum(("y", "x")) / present.sum(("y", "x"))).rename("cloud_fraction")


def valid_fraction(scene: xr.Dataset, config: MaskConfig | None = None) -> xr.DataArray:
    """Lazy share (0..1) of usable pixels over the whole grid, per date if any."""
    return valid_mask(scene, config).mean(("y", "x")).rename("valid_fraction")


def _finite(band: xr.DataArray) -> xr.DataArray:
    return xr.apply_ufunc(np.isfinite, band, dask="allowed", keep_attrs=True)

"""``masks: auto``: which mask a scene gets, and the lazy cloud/shadow detection behind it.

Methods:

- ``auto`` (default): the scene's quality band when it has one (SCL, QA_PIXEL, Fmask, cloud
  probability or mask), else the detector its sensor profile declares (``cloud_mask:`` in the
  profile YAML): ``s2cloudless`` for Sentinel-2, ``spectral`` for Landsat, PlanetScope and
  generic RGBN satellites, ``none`` for drones (they fly below the clouds). When the profile's
  detector lacks bands, the spectral test is used instead, with a :class:`CloudMaskWarning`.
- ``quality``, ``s2cloudless``, ``spectral``: that method or a :class:`~agrivision.errors.MaskError`.
- ``off``: nothing is masked.

Detection is lazy and memory-bounded: the bands the detector needs are averaged onto a
coarser grid (``detect_resolution_m``, 60 m by default, where s2cloudless's bands live
anyway), clouds are detected there block by block with a halo of the smoothing + dilation
radius, shadows are projected with a halo of the longest shift, and the codes are brought back
to the scene's grid, where the dark test for shadows runs at full resolution. The result is an
``auto_mask`` variable (0 clear, 1 cloud, 2 shadow) that :func:`~agrivision.masks.valid_mask`
decodes like any quality band; ``scene.attrs["mask"]`` says which method made the mask.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Sequence

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from agrivision.errors import MaskError
from agrivision.masks.clouds import (
    S2CLOUDLESS_BANDS,
    SPECTRAL_BANDS,
    s2cloudless_block,
    spectral_block,
)
from agrivision.masks.quality import MaskConfig, apply_mask
from agrivision.masks.shadows import SHADOW, dark, project_block, shadow_shifts
from agrivision.masks.sun import sun_position
from agrivision.sensors import PRODUCT_MASKS

METHODS = ("auto", "quality", "s2cloudless", "spectral", "off")
#: Every variable a mask can be made from (quality bands, detector and dark-test bands).
MASK_INPUTS = (*PRODUCT_MASKS, *S2CLOUDLESS_BANDS, *SPECTRAL_BANDS, "nir", "swir16")


class CloudMaskWarning(UserWarning):
    """The automatic mask is weaker than the sensor's own (a fallback test, or none at all)."""


def mask_config(mask: bool | str | MaskConfig | None) -> MaskConfig | None:
    """Normalise ``open_scene(mask=...)``: ``True``/``"auto"`` -> defaults, ``False``/``"off"``
    -> None, a method name -> that method, a :class:`MaskConfig` as it is.

    Raises
    ------
    MaskError
        An unknown method name.
    """
    if mask is None or mask is True:
        return MaskConfig()
    if mask is False:
        return None
    config = mask if isinstance(mask, MaskConfig) else MaskConfig(method=str(mask))
    if config.method not in METHODS:
        raise MaskError(
            f"unknown mask method {config.method!r}",
            fix=f"use one of {', '.join(METHODS)}",
        )
    return None if config.method == "off" else config


def mask_scene(
    scene: xr.Dataset,
    config: MaskConfig,
    *,
    detector: str | None,
    source: str | None = None,
) -> xr.Dataset:
    """Mask ``scene`` by ``config.method`` (see the module doc) and record the method.

    Parameters
    ----------
    scene
        Reflectance (0..1) on a projected, north-up grid in metres, ``(y, x)`` or
        ``(time, y, x)``; dates from ``time`` or ``attrs["datetime"]``.
    config
        The method and the detection settings.
    detector
        The sensor profile's ``cloud_mask`` (None: no profile, so no automatic detector).
    source
        Named in errors and warnings.

    Returns
    -------
    xarray.Dataset
        Reflectance NaN where masked; with ``auto_mask`` when a detector ran;
        ``attrs["mask"]`` = ``quality:<band>``, ``s2cloudless``, ``spectral`` or ``none``.
    """
    method = resolve_method(scene, config.method, detector, source)
    if method == "none":
        return scene.assign_attrs(mask="none")
    if method != "quality":
        scene = scene.assign(auto_mask=detect(scene, method, config))
    label = method
    if method == "quality":
        label = "quality:" + ",".join(v for v in PRODUCT_MASKS if v in scene)
    return apply_mask(scene, config).assign_attrs(mask=label)


def resolve_method(
    scene: xr.Dataset, requested: str, detector: str | None, source: str | None = None
) -> str:
    """The concrete method (``quality``, ``s2cloudless``, ``spectral`` or ``none``).

    Raises
    ------
    MaskError
        A forced method the scene cannot support (no quality band, missing bands).
    """
    has_quality = any(v in scene for v in PRODUCT_MASKS)
    if requested == "quality" or (requested == "auto" and has_quality):
        if not has_quality:
            raise MaskError(
                "mask 'quality' asked for, but the sources have no quality band "
                "(SCL, QA_PIXEL, Fmask, cloud probability or cloud mask)",
                source=source,
                fix="add the quality band file, or use --mask auto / s2cloudless / spectral",
            )
        return "quality"
    if requested in ("s2cloudless", "spectral") and scene.rio.crs is None:
        raise MaskError(
            f"mask {requested!r} needs a georeferenced scene (pixel size, sun position)",
            source=source,
            fix="drone frames fly below the clouds: use --mask off",
        )
    if requested in ("s2cloudless", "spectral"):
        missing = _missing(scene, requested)
        if missing:
            raise MaskError(
                f"mask {requested!r} needs bands {', '.join(missing)}, which the scene lacks",
                source=source,
                fix="add those bands (or --sensor/--bands so they are recognised), "
                "or use --mask spectral / off",
            )
        return requested
    if detector is None:
        warnings.warn(
            f"{source or 'scene'}: sensor unknown, so no automatic cloud mask: pass --sensor "
            "NAME (or --mask spectral) to mask clouds",
            CloudMaskWarning,
            stacklevel=3,
        )
        return "none"
    if detector == "none":
        return "none"
    if detector == "s2cloudless" and not _missing(scene, "s2cloudless"):
        return "s2cloudless"
    if not _missing(scene, "spectral"):
        why = (
            f"s2cloudless needs bands {', '.join(_missing(scene, 's2cloudless'))}"
            if detector == "s2cloudless"
            else "the sources have no quality band (SCL, QA_PIXEL, Fmask)"
        )
        warnings.warn(
            f"{source or 'scene'}: clouds masked by the spectral test (brightness, whiteness, "
            f"HOT) because {why}; thin clouds can be missed",
            CloudMaskWarning,
            stacklevel=3,
        )
        return "spectral"
    warnings.warn(
        f"{source or 'scene'}: no automatic cloud mask: the spectral test needs bands "
        f"{', '.join(_missing(scene, 'spectral'))}",
        CloudMaskWarning,
        stacklevel=3,
    )
    return "none"


def detect(scene: xr.Dataset, method: str, config: MaskConfig) -> xr.DataArray:
    """Lazy ``auto_mask`` codes (uint8: 0 clear, 1 cloud, 2 shadow) of ``scene`` by
    ``method`` (``s2cloudless`` or ``spectral``), on the scene's grid and chunks."""
    names = S2CLOUDLESS_BANDS if method == "s2cloudless" else SPECTRAL_BANDS
    pixel_m = abs(float(scene.rio.transform().a))
    if scene.rio.crs.is_geographic:  # degrees: about 111 km per degree is close enough here
        pixel_m *= 111_320.0
    angles = sun_angles(scene)
    suns: list[tuple[float, float] | None] = list(angles) if angles is not None else []
    if angles is None:
        warnings.warn(
            f"{scene.attrs.get('sources', ['scene'])[0]}: cloud shadows are not masked: the "
            "scene has no date to place the sun (add a DATETIME tag or a YYYYMMDD file name)",
            CloudMaskWarning,
            stacklevel=3,
        )
        suns = [None] * scene.sizes.get("time", 1)
    if "time" in scene.dims:
        layers = [
            _detect_date(scene.isel(time=i), names, method, config, pixel_m, sun)
            for i, sun in enumerate(suns)
        ]
        data = da.stack(layers)
    else:
        data = _detect_date(scene, names, method, config, pixel_m, suns[0])
    ref = scene[names[0]]
    attrs = {"method": method, "flag_values": [0, 1, 2], "flag_meanings": "clear cloud shadow"}
    return xr.DataArray(data, dims=ref.dims, coords=ref.coords, attrs=attrs, name="auto_mask")


def sun_angles(scene: xr.Dataset) -> list[tuple[float, float]] | None:
    """``(azimuth, elevation)`` in degrees per date of ``scene``: from attrs
    ``view:sun_azimuth``/``view:sun_elevation`` (a number, or one per date) when present, else
    computed at the scene centre (see :mod:`agrivision.masks.sun`); None without a date."""
    n = scene.sizes.get("time", 1)
    az, el = scene.attrs.get("view:sun_azimuth"), scene.attrs.get("view:sun_elevation")
    if az is not None and el is not None:
        az_list = list(az) if isinstance(az, Sequence) else [az] * n
        el_list = list(el) if isinstance(el, Sequence) else [el] * n
        if len(az_list) == n and None not in az_list + el_list:
            return [(float(a), float(e)) for a, e in zip(az_list, el_list, strict=True)]
    left, bottom, right, top = scene.rio.bounds()
    to_geo = Transformer.from_crs(scene.rio.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform((left + right) / 2, (bottom + top) / 2)
    dates = _dates(scene)
    return None if dates is None else [sun_position(when, lon, lat) for when in dates]


def _dates(scene: xr.Dataset) -> list[dt.datetime] | None:
    if "time" in scene.dims:
        return [pd.Timestamp(t).to_pydatetime() for t in scene["time"].values]
    if "datetime" in scene.attrs:
        return [pd.Timestamp(scene.attrs["datetime"]).to_pydatetime()]
    return None


def _missing(scene: xr.Dataset, method: str) -> list[str]:
    names = S2CLOUDLESS_BANDS if method == "s2cloudless" else SPECTRAL_BANDS
    return [n for n in names if n not in scene]


def _detect_date(
    scene: xr.Dataset,
    names: Sequence[str],
    method: str,
    config: MaskConfig,
    pixel_m: float,
    sun: tuple[float, float] | None,
) -> da.Array:
    ref = scene[names[0]].data
    f = max(1, round(config.detect_resolution_m / pixel_m))
    cy, cx = (max(f, c // f * f) for c in ref.chunksize)
    fine_chunks = ref.rechunk((cy, cx)).chunks
    coarse_chunks = tuple(tuple(math.ceil(c / f) for c in ax) for ax in fine_chunks)
    # One coarse block per scene chunk: the halos stay local, so the fine chunks that the
    # dark test needs again are released a few rows of chunks later, not at the end.
    coarse = [
        scene[n]
        .data.rechunk((cy, cx))
        .map_blocks(_block_mean, f, chunks=coarse_chunks, dtype=np.float32)
        for n in names
    ]
    if method == "s2cloudless":
        halo = _depth(coarse[0], config.average_over + config.dilation_size)
        cloud = da.map_overlap(
            s2cloudless_block, *coarse, depth=halo, boundary="none", dtype=np.uint8,
            threshold=config.cloud_probability_threshold, average_over=config.average_over,
            dilation_size=config.dilation_size,
        )  # fmt: skip
    else:
        cloud = da.map_overlap(
            spectral_block, *coarse, depth=_depth(coarse[0], config.dilation_size), boundary="none",
            dtype=np.uint8, dilation_size=config.dilation_size,
        )  # fmt: skip
    shifts = shadow_shifts(*sun, config.cloud_heights_m, pixel_m * f) if sun else [(0, 0)]
    reach = max(max(abs(r), abs(c)) for r, c in shifts)
    codes = da.map_overlap(
        project_block,
        cloud,
        depth=_depth(cloud, reach),
        boundary="none",
        dtype=np.uint8,
        shifts=shifts,
    )
    codes = codes.rechunk(coarse_chunks).map_blocks(
        _upsample, f, chunks=fine_chunks, dtype=np.uint8
    )
    nir = next((n for n in ("nir", "nir08") if n in scene), None)  # Landsat: nir08 only
    if nir:  # without NIR there is no dark test: candidates stay shadow (cautious)
        dark_bands = [scene[n].data.rechunk((cy, cx)) for n in (nir, "swir16") if n in scene]
        codes = da.map_blocks(
            _keep_dark_shadows, codes, *dark_bands, dtype=np.uint8,
            nir_max=config.shadow_nir_max, swir_max=config.shadow_swir_max,
        )  # fmt: skip
    return codes.rechunk(ref.chunks)


def _depth(arr: da.Array, halo: int) -> dict[int, int]:
    """The halo per axis, no deeper than the array (beyond it there is nothing to see)."""
    return {axis: min(halo, size) for axis, size in enumerate(arr.shape)}


def _block_mean(block: np.ndarray, f: int) -> np.ndarray:
    """Mean of each ``f x f`` cell (NaN ignored; a partial cell at the block edge counts)."""
    rows, cols = block.shape
    pr, pc = -rows % f, -cols % f
    padded = np.pad(block.astype(np.float32), ((0, pr), (0, pc)), constant_values=np.nan)
    cells = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f)
    finite = np.isfinite(cells)
    total = np.where(finite, cells, 0).sum(axis=(1, 3))
    count = finite.sum(axis=(1, 3))
    out = np.full(total.shape, np.nan, np.float32)
    np.divide(total, count, out=out, where=count > 0)
    return out


def _upsample(block: np.ndarray, f: int, block_info=None) -> np.ndarray:
    rows, cols = block_info[None]["chunk-shape"]
    return np.repeat(np.repeat(block, f, axis=0), f, axis=1)[:rows, :cols]


def _keep_dark_shadows(
    codes: np.ndarray,
    nir: np.ndarray,
    swir: np.ndarray | None = None,
    *,
    nir_max: float,
    swir_max: float,
) -> np.ndarray:
    out = codes.copy()
    out[(codes == SHADOW) & ~dark(nir, swir, nir_max, swir_max)] = 0
    return out

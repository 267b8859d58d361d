"""The automatic cloud/shadow mask of :mod:`agrivision.masks.auto` on a decimated read.

Screening reads every band decimated (:class:`~agrivision.screening.scenes.Reader`); when a
scene has no quality band, its bands are named and scaled to reflectance as ``open_scene``
would (headers only), and the sensor's detector runs on the decimated grid. The codes become
an ``auto_mask`` layer that :func:`~agrivision.screening.quality.measure` decodes like SCL.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr
from rasterio.transform import Affine

from agrivision.errors import AgrivisionError
from agrivision.io.bands import band_layers
from agrivision.masks import PRODUCT_MASKS, MaskConfig
from agrivision.masks.auto import detect, resolve_method
from agrivision.screening.scenes import SceneRef


def auto_mask_layer(
    scene: SceneRef,
    arrays: dict[str, list[np.ndarray]],
    shape: tuple[int, int],
    config: MaskConfig,
    *,
    sensor: str | None = None,
    bands: list[str] | None = None,
) -> tuple[np.ndarray | None, str]:
    """Codes (uint8: 0 clear, 1 cloud, 2 shadow) of a decimated scene, and the method used.

    Returns ``(None, method)`` when the scene has a quality band, is not georeferenced, or
    (under ``auto``) its bands cannot be told apart or no detector applies.

    Raises
    ------
    MaskError
        A forced method (``s2cloudless``, ``spectral``, ``quality``) the scene cannot support.
    """
    if any(v in arrays for v in PRODUCT_MASKS):
        return None, "quality"
    forced = config.method != "auto"
    if not scene.georeferenced:
        return None, "none"
    try:
        layers, profile = band_layers(scene.files, sensor=sensor, bands=bands, item=scene.item)
    except AgrivisionError:
        if forced:
            raise
        return None, "none"
    ds = _decimated(scene, arrays, shape, layers)
    method = resolve_method(
        ds, config.method, profile.cloud_mask if profile else None, source=scene.source
    )
    if method in ("none", "quality"):
        return None, method
    return np.asarray(detect(ds, method, config).compute()), method


def _decimated(scene: SceneRef, arrays, shape, layers) -> xr.Dataset:
    rows, cols = shape
    t = scene.transform @ Affine.scale(scene.shape[1] / cols, scene.shape[0] / rows)
    data_layers = [la for la in scene.layers if la.var == "data"]
    variables = {}
    for layer, raw in zip(data_layers, arrays.get("data", []), strict=True):
        name, scale, offset, nodata = layers.get((layer.path, layer.band), (None, 1, 0, None))
        if name is None or name in variables:
            continue
        refl = raw.astype(np.float32) * np.float32(scale) + np.float32(offset)
        if nodata is not None and not np.isnan(nodata):
            refl[raw == nodata] = np.nan
        variables[name] = (("y", "x"), da.from_array(refl, chunks=max(rows, cols)))
    ds = xr.Dataset(
        variables,
        coords={"y": t.f + (np.arange(rows) + 0.5) * t.e, "x": t.c + (np.arange(cols) + 0.5) * t.a},
    )
    ds = ds.rio.write_crs(scene.crs).rio.write_transform(t)
    if scene.date is not None:
        ds.attrs["datetime"] = scene.date.isoformat()
    props = (scene.item or {}).get("properties", {})
    ds.attrs.update({k: v for k, v in props.items() if k.startswith("view:sun_")})
    ds.attrs["sources"] = [scene.source]
    return ds

"""Cloud detectors that run on one block of reflectance (numpy), for imagery without a quality band.

- ``s2cloudless``: Sentinel Hub's LightGBM pixel classifier (the ``s2cloudless`` package and
  its shipped model), on the ten Sentinel-2 bands it was trained on (TOA reflectance 0..1),
  followed by its own smoothing of the probability and dilation of the mask.
- ``spectral``: a fallback for sensors without those bands (4-band Sentinel-2 files,
  PlanetScope, Landsat without QA_PIXEL, any RGBN satellite). A pixel is cloud when it is
  *bright* (mean of blue, green, red above 0.2), *white* (Fmask's whiteness, the mean absolute
  deviation of the visible bands over their mean, below 0.7; Zhu & Woodcock 2012) and *hazy*
  (haze-optimised transform ``blue - 0.5 red - 0.08 > 0``; Zhang et al. 2002). Thin clouds
  and bright white roofs are where it errs; the mask is dilated like s2cloudless's.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import ndimage

#: The bands s2cloudless's model uses (B01 B02 B04 B05 B08 B8A B09 B10 B11 B12), in its order.
S2CLOUDLESS_BANDS = (
    "coastal", "blue", "red", "rededge1", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22",
)  # fmt: skip
SPECTRAL_BANDS = ("blue", "green", "red")
BRIGHTNESS_MIN = 0.2
WHITENESS_MAX = 0.7
HOT_OFFSET = 0.08


@cache
def _detector(threshold: float, average_over: int, dilation_size: int):
    from s2cloudless import S2PixelCloudDetector

    return S2PixelCloudDetector(
        threshold=threshold,
        average_over=average_over or None,
        dilation_size=dilation_size or None,
        all_bands=False,
    )


def s2cloudless_block(
    *bands: np.ndarray, threshold: float, average_over: int, dilation_size: int
) -> np.ndarray:
    """Cloud mask (uint8, 1 = cloud) of one block from the :data:`S2CLOUDLESS_BANDS` (0..1).

    Pixels with a missing band get probability 0 (nodata is masked elsewhere).
    """
    stack = np.stack(bands, axis=-1).astype(np.float32)
    missing = ~np.isfinite(stack).all(axis=-1)
    stack[missing] = 0.0
    detector = _detector(threshold, average_over, dilation_size)
    # One thread: dask already runs one block per core.
    prob = detector.get_cloud_probability_maps(stack[np.newaxis], num_threads=1)
    prob[0][missing] = 0.0
    return detector.get_mask_from_prob(prob)[0].astype(np.uint8)


def spectral_block(
    blue: np.ndarray, green: np.ndarray, red: np.ndarray, *, dilation_size: int
) -> np.ndarray:
    """Cloud mask (uint8, 1 = cloud) of one block by the brightness, whiteness and HOT tests."""
    mean = (blue + green + red) / 3
    with np.errstate(invalid="ignore", divide="ignore"):
        whiteness = (np.abs(blue - mean) + np.abs(green - mean) + np.abs(red - mean)) / mean
        cloud = (
            (mean > BRIGHTNESS_MIN)
            & (whiteness < WHITENESS_MAX)
            & (blue - 0.5 * red - HOT_OFFSET > 0)
        )
    if dilation_size:
        cloud = ndimage.binary_dilation(cloud, structure=disk(dilation_size))
    return cloud.astype(np.uint8)


def disk(radius: int) -> np.ndarray:
    """Boolean disk of ``radius`` pixels (``2 * radius + 1`` square)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx**2 + yy**2 <= radius**2

"""Small labelled training tiles with known truth, for the example config, tests and benchmark.

Each tile is a 4-band (blue, green, red, nir) float32 reflectance GeoTIFF with a uint8 label
GeoTIFF beside it, in the crop-health class schema (:data:`~agrivision.health.schema.DEFAULT_SCHEMA`):
``0 background`` (a road), ``1 healthy``, ``2 stressed``, ``3 anomaly`` (speckled damaged
canopy, like pest damage), ``4 bare_soil``. Stress, damage and bare patches are smooth random
blobs; the damage is speckled, so texture as well as spectrum separates it.

Usage: ``python -m agrivision.segment.synthetic_tiles OUT_DIR [N] [SIZE]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage

from agrivision.health.schema import DEFAULT_SCHEMA
from agrivision.io.atomic import atomic_path

BANDS = ("blue", "green", "red", "nir")
CLASSES = tuple(DEFAULT_SCHEMA.names.values())
# Mean reflectance per class and band (blue, green, red, nir): plausible, not measured.
SPECTRA = np.array(
    [
        [0.12, 0.13, 0.14, 0.16],
        [0.03, 0.08, 0.04, 0.45],
        [0.05, 0.10, 0.09, 0.30],
        [0.07, 0.09, 0.12, 0.24],
        [0.12, 0.16, 0.22, 0.27],
    ],
    np.float32,
)


def make_tile(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One ``(4, size, size)`` float32 reflectance tile and its ``(size, size)`` uint8 labels."""
    label = np.ones((size, size), np.uint8)
    for cls, share in ((2, 0.15), (4, 0.08), (3, 0.08)):
        blob = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=size / 16)
        label[blob > np.quantile(blob, 1 - share)] = cls
    road = int(rng.integers(size // 8, size - size // 8))
    width = max(2, size // 32)
    if rng.random() < 0.5:
        label[road : road + width] = 0
    else:
        label[:, road : road + width] = 0
    image = SPECTRA[label].transpose(2, 0, 1).copy()
    speckle = rng.random((size, size)) < 0.35
    image[:, (label == 3) & speckle] = SPECTRA[1][:, None]  # damaged canopy with green leaves
    light = 1 + 0.1 * ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=size / 4)
    noise = 1 + 0.04 * rng.standard_normal(image.shape)
    return (image * light * noise).astype(np.float32), label


def write_tiles(
    directory: str | os.PathLike,
    n: int = 8,
    size: int = 256,
    *,
    seed: int = 0,
    crs: str = "EPSG:32633",
    gsd: float = 10.0,
) -> list[tuple[Path, Path]]:
    """Write ``n`` tiles ``tile_NNN.tif`` + ``tile_NNN_label.tif`` (side by side, UTM grid).

    Returns
    -------
    list of (Path, Path)
        Image and label paths.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        image, label = make_tile(size, rng)
        transform = from_origin(500000 + i * size * gsd, 5800000, gsd, gsd)
        common = dict(driver="GTiff", width=size, height=size, crs=crs, transform=transform,
                      compress="deflate")  # fmt: skip
        image_path, label_path = out / f"tile_{i:03d}.tif", out / f"tile_{i:03d}_label.tif"
        with (
            atomic_path(image_path) as tmp,
            rasterio.open(
                tmp, "w", count=len(BANDS), dtype="float32", nodata=np.nan, **common
            ) as dst,
        ):
            dst.write(image)
            dst.descriptions = BANDS
        with (
            atomic_path(label_path) as tmp,
            rasterio.open(tmp, "w", count=1, dtype="uint8", **common) as dst,
        ):
            dst.write(label[None])
        paths.append((image_path, label_path))
    return paths


if __name__ == "__main__":  # pragma: no cover
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    written = write_tiles(args[0], *(int(a) for a in args[1:3]))
    print(f"wrote {len(written)} tiles to {args[0]}")

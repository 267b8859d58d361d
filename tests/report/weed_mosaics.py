"""Georeferenced drone mosaics of soil, crop rows and weeds with known labels, and the truth of
per-cell class shares computed by hand (numpy), for the weed-pressure tests."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from rasterio.features import rasterize

CRS = "EPSG:32633"
CLASSES = ("soil", "crop", "weed")
# Reflectance (red, nir) per class: plants are dark in red and bright in NIR, the weed species
# a little less so than the crop (made up, but separable, as a trained model's classes are).
SPECTRA = np.array([[0.22, 0.28], [0.04, 0.50], [0.10, 0.36]], np.float32)


def weed_scene(
    shape: tuple[int, int], weed_density: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(2, H, W)`` reflectance and ``(H, W)`` labels: crop rows (discs every 12 px on rows
    24 px apart) and weed discs whose number per block follows ``weed_density`` (one value per
    block of a regular grid of blocks)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    label = np.zeros(shape, np.uint8)
    for y in range(12, h, 24):
        for x in range(6, w, 12):
            label[(yy - y) ** 2 + (xx - x) ** 2 <= int(rng.integers(9, 20))] = 1
    by, bx = weed_density.shape
    for i in range(by):
        for j in range(bx):
            y0, y1, x0, x1 = i * h // by, (i + 1) * h // by, j * w // bx, (j + 1) * w // bx
            for _ in range(int(weed_density[i, j])):
                cy, cx = rng.integers(y0, y1), rng.integers(x0, x1)
                r2 = int(rng.integers(16, 64))
                s = slice(max(cy - 9, 0), cy + 9), slice(max(cx - 9, 0), cx + 9)
                disc = (yy[s] - cy) ** 2 + (xx[s] - cx) ** 2 <= r2
                label[s][disc] = 2
    image = SPECTRA[label].transpose(2, 0, 1).copy()
    image *= 1 + 0.03 * rng.standard_normal(image.shape).astype(np.float32)
    return image, label


def write_mosaic(path: Path, image: np.ndarray, transform: Affine) -> Path:
    """A float32 reflectance GeoTIFF with bands named ``red`` and ``nir``."""
    _, h, w = image.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=2, dtype="float32", crs=CRS,
        transform=transform, nodata=np.nan, tiled=True, blockxsize=256, blockysize=256,
    ) as dst:  # fmt: skip
        dst.write(image.astype(np.float32))
        dst.descriptions = ("red", "nir")
    return path


def write_labels(path: Path, label: np.ndarray, transform: Affine) -> Path:
    """A uint8 label GeoTIFF beside a mosaic."""
    h, w = label.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8", crs=CRS,
        transform=transform,
    ) as dst:  # fmt: skip
        dst.write(label[None])
    return path


def cell_truth(
    label: np.ndarray, transform: Affine, cells: gpd.GeoDataFrame, n_classes: int = 3
) -> np.ndarray:
    """``(cells, classes)`` share (%) of each class among each cell's pixels, by counting the
    pixels whose centre lies in the cell (exact for cells on pixel edges)."""
    ids = rasterize(
        zip(cells.geometry, cells["cell_id"], strict=True), out_shape=label.shape,
        transform=transform, fill=0, dtype="int32",
    )  # fmt: skip
    counts = np.zeros((len(cells) + 1, n_classes))
    np.add.at(counts, (ids.ravel(), label.ravel()), 1)
    counts = counts[cells["cell_id"].to_numpy()]
    return 100 * counts / counts.sum(axis=1, keepdims=True)

"""Plain (not cloud-optimised) GeoTIFFs, and the block writer that COG staging shares.

Where a COG does not fit: small training chips, single drone frames without a CRS (a pixel
grid only), and predictions written strip by strip as their rows of chunks are computed.
Files appear atomically (temporary file, then rename).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window

from agrivision.io.atomic import atomic_path
from agrivision.io.blocks import Region


class BlockWriter:
    """A ``dask.array.store`` target: windowed writes of ``(band, y, x)`` blocks into an open
    rasterio dataset (thread-safe); notes whether any pixel differs from ``nodata``."""

    def __init__(self, dataset: rasterio.io.DatasetWriter, nodata: float | None):
        self.dataset = dataset
        self.name = dataset.name
        self.nodata = nodata
        self.any_valid = nodata is None
        self._lock = threading.Lock()  # GDAL dataset handles are not thread-safe

    def __setitem__(self, key: Region, value: np.ndarray) -> None:
        bands, rows, cols = key
        if not self.any_valid:  # cheap: the chunk is in cache, and it stops at the first hit
            nodata = self.nodata
            self.any_valid = bool(
                (~np.isnan(value) if np.isnan(nodata) else value != nodata).any()  # type: ignore[arg-type]
            )
        window = Window.from_slices(
            rows, cols, height=self.dataset.height, width=self.dataset.width
        )
        first = bands.start or 0
        indexes = list(range(first + 1, first + value.shape[0] + 1))
        with self._lock:
            self.dataset.write(value, indexes=indexes, window=window)

    def close(self) -> None:
        self.dataset.close()


@contextlib.contextmanager
def geotiff_writer(
    path: str | os.PathLike,
    *,
    count: int,
    height: int,
    width: int,
    dtype: str | np.dtype,
    crs: rasterio.crs.CRS | None = None,
    transform: rasterio.Affine | None = None,
    nodata: float | None = None,
    compress: str = "deflate",
    predictor: int | None = None,
    blocksize: int | None = None,
    descriptions: Sequence[str | None] | None = None,
    tags: Mapping[str, Any] | None = None,
    band_tags: Sequence[Mapping[str, Any]] | None = None,
    overwrite: bool = True,
) -> Iterator[BlockWriter]:
    """Open a plain (not cloud-optimised) GeoTIFF for block writes; it appears at ``path``
    atomically when the ``with`` block ends without an error.

    For outputs that must not be COGs: small chips, single drone frames without a CRS
    (pixel grid only, no ``NotGeoreferencedWarning``), predictions written strip by strip.

    Parameters
    ----------
    path
        Output ``.tif``.
    count, height, width, dtype
        Bands, rows, columns (pixels) and data type.
    crs, transform
        Georeferencing; both None for a plain pixel grid.
    nodata
        Nodata value of every band (NaN allowed for floats), or None.
    compress, predictor
        GDAL compression and predictor (GDAL's default predictor when None).
    blocksize
        Tile edge in pixels (multiple of 16); None writes GDAL's default strips.
    descriptions
        Band descriptions (None entries stay empty).
    tags, band_tags
        Dataset tags and one mapping of tags per band (values become strings).
    overwrite
        Replace an existing file (default) or raise :class:`OutputError`.

    Yields
    ------
    BlockWriter
        Accepts ``writer[bands, rows, cols] = block``; ``writer.dataset`` is the open file.
    """
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": width, "height": height, "count": count,
        "dtype": np.dtype(dtype).name, "nodata": nodata, "compress": compress,
    }  # fmt: skip
    if predictor is not None:
        profile["predictor"] = predictor
    if blocksize is not None:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with contextlib.ExitStack() as stack:
        if crs is None:  # a pixel grid is all there is: expected, not worth a warning
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        tmp = stack.enter_context(atomic_path(path, overwrite=overwrite))
        dataset = stack.enter_context(rasterio.open(tmp, "w", **profile))
        set_metadata(dataset, descriptions or (), tags, band_tags=band_tags)
        yield BlockWriter(dataset, nodata)


def write_geotiff(data: np.ndarray, path: str | os.PathLike, **options: Any) -> Path:
    """Write an in-memory ``(band, y, x)`` array as a plain GeoTIFF, atomically.

    ``options`` are those of :func:`geotiff_writer` besides the shape and dtype, which come
    from ``data``. Returns the written path.
    """
    count, height, width = data.shape
    with geotiff_writer(
        path, count=count, height=height, width=width, dtype=data.dtype, **options
    ) as writer:
        writer.dataset.write(data)
    return Path(path)


def set_metadata(
    dataset: rasterio.io.DatasetWriter,
    descriptions: Sequence[str | None],
    tags: Mapping[str, Any] | None,
    *,
    colormap: Mapping[int, tuple[int, ...]] | None = None,
    band_tags: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Write band descriptions (None entries skipped), dataset tags, one mapping of tags per
    band and a ``{value: (r, g, b[, a])}`` colour table (on band 1, as GeoTIFF holds one)
    into a dataset open for writing. Tag values become strings."""
    for i, text in enumerate(descriptions, start=1):
        if text is not None:
            dataset.set_band_description(i, text)
    for i, own in enumerate(band_tags or (), start=1):
        dataset.update_tags(i, **{str(k): str(v) for k, v in own.items()})
    if tags:
        dataset.update_tags(**{str(k): str(v) for k, v in tags.items()})
    if colormap is not None:
        dataset.write_colormap(1, {int(k): tuple(v) for k, v in colormap.items()})

"""Labelled training images: rasters or plain images (PNG, JPEG) with label rasters or with
polygons rasterised from a class column.

Training tiles are loaded whole into memory (they are tiles, not scenes); whole scenes are
only ever segmented lazily (:mod:`agrivision.segment.predict`).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import torch
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning

from agrivision.errors import BandNotFoundError, ConfigError, SourceError
from agrivision.segment.config import DataConfig, DataSource
from agrivision.segment.model import ModelSpec
from agrivision.segment.nodata import NODATA
from agrivision.segment.prepare import pool, pool_labels


@dataclass
class Sample:
    """One labelled image at the model's resolution.

    Attributes
    ----------
    name
        The image file name.
    image
        ``(bands, H, W)`` float32 reflectance, NaN = nodata.
    label
        ``(H, W)`` uint8 class codes, 255 = not labelled (ignored).
    """

    name: str
    image: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class Pair:
    """An image file and where its labels come from."""

    image: Path
    labels: Path  # a label raster, or the vector file
    vector: bool


def resolve(source: DataSource, root: str | Path) -> list[Pair]:
    """List the image/label files of ``source`` (paths relative to ``root``), sorted.

    Raises
    ------
    SourceError
        No image matches, or an image's label file does not exist.
    """
    base = Path(root)
    if source.ids is not None:
        images = [base / source.images.format(id=i) for i in source.ids]
    else:
        images = sorted(Path(p) for p in glob.glob(str(base / source.images)))
    if not images:
        raise SourceError(
            f"no image matches {source.images!r}", source=base, fix="check data.root and the glob"
        )
    pairs = []
    for i, image in enumerate(images):
        if source.vector is not None:
            pairs.append(Pair(image, base / source.vector, True))
            continue
        assert source.labels is not None
        ident = source.ids[i] if source.ids is not None else image.stem
        label = base / source.labels.format(id=ident, stem=image.stem)
        for path in (image, label):
            if not path.is_file():
                raise SourceError("file not found", source=path, fix="check data paths and ids")
        pairs.append(Pair(image, label, False))
    return pairs


def read_image(
    path: str | Path,
    bands: tuple[str, ...],
    *,
    channels: dict[str, int] | None = None,
    scale: float | None = None,
    offset: float = 0.0,
) -> tuple[np.ndarray, dict]:
    """Read ``bands`` of a raster or plain image as float32 reflectance.

    Parameters
    ----------
    path
        GeoTIFF or any GDAL-readable image (PNG, JPEG: not georeferenced, that is fine).
    bands
        Common names, in the order wanted.
    channels
        Common name -> 1-based band index (default: band descriptions, else file order).
    scale, offset
        Integer pixels become ``DN * scale + offset`` (default scale 1/255 for 8-bit, 1/10000
        for other integers). Float pixels are reflectance already (NaN = nodata).

    Returns
    -------
    (numpy.ndarray, dict)
        ``(bands, H, W)`` reflectance with NaN at nodata, and the grid (``crs``,
        ``transform``, ``shape``) for rasterising vector labels.

    Raises
    ------
    SourceError, BandNotFoundError
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise SourceError(f"cannot open image ({exc})", source=path) from exc
        with src:
            indexes = _band_indexes(src, bands, channels, path)
            dn = src.read(indexes, masked=True)
            grid = {"crs": src.crs, "transform": src.transform, "shape": (src.height, src.width)}
    data = dn.data.astype(np.float32)
    if np.issubdtype(dn.dtype, np.integer) or scale is not None:
        factor = scale if scale is not None else (1 / 255 if dn.dtype == np.uint8 else 1e-4)
        data = data * np.float32(factor) + np.float32(offset)
    data[np.ma.getmaskarray(dn)] = np.nan
    return data, grid


def _band_indexes(src, bands, channels, path) -> list[int]:
    if channels is not None:
        missing = [b for b in bands if b not in channels]
        bad = [i for i in channels.values() if not 1 <= i <= src.count]
        if missing or bad:
            raise BandNotFoundError(
                f"data.channels lacks {missing} or names band indexes outside 1..{src.count}",
                source=path,
                fix="map every model band to a 1-based band index of the file",
            )
        return [channels[b] for b in bands]
    described = {d: i for i, d in enumerate(src.descriptions, start=1) if d}
    if all(b in described for b in bands):
        return [described[b] for b in bands]
    if src.count == len(bands):
        return list(range(1, src.count + 1))
    raise BandNotFoundError(
        f"cannot tell which of the {src.count} bands are {list(bands)}",
        source=path,
        fix="set data.channels, e.g. {red: 1, nir: 2}",
    )


def read_labels(
    pair: Pair, grid: dict, source: DataSource | None, classes: tuple[str, ...]
) -> np.ndarray:
    """The ``(H, W)`` uint8 labels of ``pair`` on the image's grid (255 = ignored).

    ``source`` gives the class column, layer and fill for vector labels.

    Raises
    ------
    SourceError
        Label raster of another size, or codes that are not classes of the model.
    """
    if pair.vector:
        source = source or DataSource(images="", vector=str(pair.labels))
        label = _rasterise(pair.labels, grid, source, classes)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(pair.labels) as src:
                if (src.height, src.width) != grid["shape"]:
                    raise SourceError(
                        f"label raster is {src.height}x{src.width}, the image "
                        f"{grid['shape'][0]}x{grid['shape'][1]}",
                        source=pair.labels,
                        fix="labels must be on the image's pixel grid",
                    )
                band = src.read(1, masked=True)
        bad = np.setdiff1d(np.unique(band.compressed()), [*range(len(classes)), NODATA])
        if bad.size:
            raise SourceError(
                f"label codes {bad.tolist()[:5]} are not classes 0..{len(classes) - 1}",
                source=pair.labels,
                fix="relabel, or list every class under model.classes (255 = ignored)",
            )
        label = band.filled(NODATA).astype(np.uint8)
    return label


def _rasterise(path: Path, grid: dict, source: DataSource, classes: tuple[str, ...]) -> np.ndarray:
    shapes = vector_labels(path, grid["crs"], source, classes)
    return rasterise(shapes, grid, source.unlabelled)


def vector_labels(
    path: Path, crs, source: DataSource, classes: tuple[str, ...]
) -> list[tuple[object, int]]:
    """``(geometry, class code)`` of the polygons in ``path``, reprojected to ``crs``.

    Raises
    ------
    SourceError
        No CRS to rasterise onto, missing class column, unknown class values.
    """
    import geopandas as gpd

    if crs is None:
        raise SourceError(
            "vector labels need georeferenced images", source=path, fix="use label rasters"
        )
    frame = gpd.read_file(path, layer=source.layer)
    if source.class_column not in frame:
        raise SourceError(
            f"no column {source.class_column!r} (columns: {list(frame.columns)})",
            source=path,
            fix="set the class column (data.*.class_column, --class-column)",
        )
    frame = frame.to_crs(crs)
    codes = {name: i for i, name in enumerate(classes)}
    values = [_code(v, codes) for v in frame[source.class_column]]
    bad = sorted(
        {str(v) for v, c in zip(frame[source.class_column], values, strict=True) if c is None}
    )
    if bad:
        raise SourceError(
            f"class values {bad[:5]} are neither class codes nor names {list(classes)[:10]}",
            source=path,
            fix="fix the class column or the class names",
        )
    return [
        (g, v)
        for g, v in zip(frame.geometry, values, strict=True)
        if g is not None and v is not None
    ]


def rasterise(shapes: list[tuple[object, int]], grid: dict, fill: int = NODATA) -> np.ndarray:
    """Burn ``(geometry, code)`` pairs onto ``grid`` (``transform``, ``shape``) as uint8."""
    from rasterio.features import rasterize

    if not shapes:
        return np.full(grid["shape"], fill, np.uint8)
    return rasterize(
        shapes, out_shape=grid["shape"], transform=grid["transform"], fill=fill, dtype=np.uint8
    )


def _code(value, codes: dict[str, int]) -> int | None:
    """Class code of a class name or an integer code (also as text, as some formats store it)."""
    if isinstance(value, str):
        if value in codes:
            return codes[value]
        value = int(value) if value.strip().isdigit() else None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value) if 0 <= value < len(codes) else None
    return None


def load_samples(source: DataSource, data: DataConfig, spec: ModelSpec) -> list[Sample]:
    """Read every labelled image of ``source`` at the model's resolution (see
    :func:`load_pairs`)."""
    return load_pairs(resolve(source, data.root), data, spec, source)


def load_pairs(
    pairs: list[Pair], data: DataConfig, spec: ModelSpec, source: DataSource | None = None
) -> list[Sample]:
    """Read labelled images at the model's resolution.

    Pixels where any band is nodata are not labelled (255). With ``spec.downsample > 1``
    images are block-averaged and labels take the block's majority, exactly as inference
    pools its input. ``source`` says how to rasterise vector labels (raster labels need none).
    """
    samples = []
    for pair in pairs:
        image, grid = read_image(
            pair.image, spec.bands, channels=data.channels, scale=data.scale, offset=data.offset
        )
        label = read_labels(pair, grid, source, spec.classes)
        label[~np.isfinite(image).all(axis=0)] = NODATA
        f = spec.downsample
        image = pool(torch.from_numpy(image), f).numpy()
        label = pool_labels(label, f, len(spec.classes))
        label[~np.isfinite(image).all(axis=0)] = NODATA
        samples.append(Sample(pair.image.name, image, label))
    return samples


def fingerprint(pairs: list[Pair], settings: dict) -> str:
    """SHA-256 over the content of every image and label file and the data settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for pair in pairs:
        for path in (pair.image, pair.labels):
            digest.update(path.name.encode())
            with open(path, "rb") as fh:
                for block in iter(functools.partial(fh.read, 1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def image_scene(image: np.ndarray, bands: tuple[str, ...], *, chunks: int = 1024) -> xr.Dataset:
    """Wrap a ``(bands, H, W)`` reflectance array as a lazy Scene on a pixel grid (no CRS)."""
    if image.shape[0] != len(bands):
        raise ConfigError(f"{image.shape[0]} image bands for {len(bands)} names {list(bands)}")
    arr = da.from_array(image, chunks=(1, chunks, chunks))
    ys, xs = (
        np.arange(image.shape[1], dtype=np.float64),
        np.arange(image.shape[2], dtype=np.float64),
    )
    return xr.Dataset(
        {b: (("y", "x"), arr[i]) for i, b in enumerate(bands)},
        coords={"y": -ys - 0.5, "x": xs + 0.5},
    )

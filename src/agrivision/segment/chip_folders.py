"""Chip directories: image/label chip pairs cut from labelled images, with a spatial split.

``write_chips`` cuts each image (and its label raster, or polygons rasterised from a class
column) into ``size``-pixel chips on a regular grid, assigns each chip to ``train`` or
``validation`` by blocks (:func:`agrivision.segment.split.validation_blocks`, seeded) and
writes::

    CHIPDIR/images/NNN_STEM_rROW_cCOL.tif   all bands of the image, its dtype, nodata, band names
    CHIPDIR/labels/NNN_STEM_rROW_cCOL.tif   uint8 class codes, 255 = not labelled
    CHIPDIR/index.json                      settings, sources and one record per chip

Chips are GeoTIFFs, georeferenced (CRS and the window's transform) when the input is. A
validation chip lies wholly inside validation blocks; a training chip stays ``buffer`` pixels
away from every validation block; chips that are neither (they straddle a split boundary or
its buffer) are dropped, and so are chips without a labelled pixel. The same inputs and
settings give byte-identical index files (no timestamps).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from agrivision.errors import ConfigError, OutputError, SourceError
from agrivision.io.atomic import atomic_path, check_writable
from agrivision.io.geotiff import write_geotiff
from agrivision.segment.config import DataSource
from agrivision.segment.data import Pair, rasterise, vector_labels
from agrivision.segment.nodata import NODATA
from agrivision.segment.split import validation_blocks
from agrivision.segment.windows import window_starts

INDEX = "index.json"
SPLITS = ("train", "validation")
# Without class names, vector class values must be integer codes 0..254 (as numbers or text).
_CODES = tuple(str(i) for i in range(NODATA))


def write_chips(
    images: Sequence[str | os.PathLike],
    labels: Sequence[str | os.PathLike],
    directory: str | os.PathLike,
    *,
    size: int = 256,
    overlap: int = 0,
    seed: int = 0,
    val_fraction: float = 0.2,
    block: int | None = None,
    buffer: int | None = None,
    class_column: str | None = None,
    layer: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Cut labelled images into chip pairs with a deterministic spatial split.

    Parameters
    ----------
    images
        Rasters or plain images (PNG, JPEG); any CRS, or none.
    labels
        One label raster per image (same pixel grid), or one vector file for all images
        whose ``class_column`` holds integer class codes (polygons are rasterised onto each
        image's grid; pixels outside every polygon are not labelled, 255).
    directory
        Output directory (created); holds ``images/``, ``labels/`` and ``index.json``.
    size
        Chip edge in pixels.
    overlap
        Pixels shared by neighbouring chips of the grid (``0 <= overlap < size``).
    seed
        Seeds the choice of validation blocks: the same seed gives the same chips and split.
    val_fraction
        Share of blocks (over all images) that are validation blocks.
    block
        Block edge in pixels (default ``2 * size``); blocks are the unit of the split.
    buffer
        Gap in pixels kept between training chips and validation blocks (default
        ``size // 8``; at least 1, so that chips of the two splits never touch).
    overwrite
        Replace an existing ``index.json`` (chip files of the same name are replaced).

    Returns
    -------
    Path
        The index file.

    Raises
    ------
    ConfigError
        Invalid settings, or no chip fits.
    SourceError
        Unreadable inputs, label rasters of another size, unknown class values.
    OutputError
        ``index.json`` exists and ``overwrite`` is false.
    """
    block = 2 * size if block is None else block
    buffer = max(1, size // 8) if buffer is None else buffer
    _check_settings(size, overlap, block, buffer, val_fraction)
    image_files = [Path(p) for p in images]
    label_files = [Path(p) for p in labels]
    vector = len(label_files) == 1 and label_files[0].suffix.lower() not in {
        ".tif",
        ".tiff",
        ".png",
    }
    if not image_files or (not vector and len(label_files) != len(image_files)):
        raise ConfigError(
            f"{len(image_files)} images and {len(label_files)} label files",
            fix="give one label raster per image, or one vector file with --class-column",
        )
    if vector and class_column is None:
        raise ConfigError("vector labels need a class column", fix="pass --class-column")
    out = Path(directory)
    index_path = out / INDEX
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    check_writable(index_path, overwrite=overwrite)

    val = validation_blocks(
        [_shape(p) for p in image_files], block=block, val_fraction=val_fraction, seed=seed
    )
    layout = _Layout(size, size - overlap, block, buffer)
    source = DataSource(
        images="", vector=str(label_files[0]), class_column=class_column or "class", layer=layer
    )
    records, sources = [], []
    for i, image in enumerate(image_files):
        val_blocks = {(r, c) for j, r, c in val if j == i}
        label_path = label_files[0] if vector else label_files[i]
        with _quiet(), rasterio.open(image) as src:
            shapes = vector_labels(label_path, src.crs, source, _CODES) if vector else None
            with contextlib.ExitStack() as stack:
                grid = (src.height, src.width)
                label_src = None if vector else stack.enter_context(_open_labels(label_path, grid))
                records += _cut_image(i, image, src, label_src, shapes, layout, val_blocks, out)
            sources.append(_source_record(image, label_path, src, val_blocks))
    if not records:
        raise ConfigError(
            f"no labelled {size}-pixel chip fits into the images",
            fix="use a smaller --size, or check that labels overlap the images",
        )
    settings = {
        "size": size, "overlap": overlap, "seed": seed, "val_fraction": val_fraction,
        "block": block, "buffer": buffer, "class_column": class_column,
    }  # fmt: skip
    index = {
        "format": "agrivision-chips",
        "format_version": 1,
        "settings": settings,
        "sources": sources,
        "chips": records,
    }
    with atomic_path(index_path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    return index_path


@dataclass(frozen=True)
class _Layout:
    """Chip grid and split geometry, pixels."""

    size: int
    stride: int
    block: int
    buffer: int


def _check_settings(size: int, overlap: int, block: int, buffer: int, val_fraction: float) -> None:
    if size < 8 or not 0 <= overlap < size or block < 1 or buffer < 1:
        raise ConfigError(
            f"invalid chip settings: size {size}, overlap {overlap}, block {block}, "
            f"buffer {buffer}",
            fix="use size >= 8, 0 <= overlap < size, block >= 1, buffer >= 1",
        )
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")


def _cut_image(
    i: int, image: Path, src, label_src, shapes, layout: _Layout, val_blocks: set, out: Path
) -> list[dict]:
    """Write the labelled chips of image number ``i``; their index records.

    Labels come from ``label_src`` (an open raster on the image's grid) or, when it is None,
    from rasterising ``shapes``.
    """
    size, shape = layout.size, (src.height, src.width)
    records = []
    for r in window_starts(src.height, size, layout.stride):
        for c in window_starts(src.width, size, layout.stride):
            split = _split(r, c, size, layout.buffer, layout.block, shape, val_blocks)
            if split is None:
                continue
            window = Window(c, r, size, size)
            if label_src is None:
                chip_grid = {"transform": src.window_transform(window), "shape": (size, size)}
                label = rasterise(shapes, chip_grid)
            else:
                label = label_src.read(1, window=window, masked=True)
                label = label.filled(NODATA).astype(np.uint8)
            counts = np.bincount(label.ravel(), minlength=256)
            if counts[:NODATA].sum() == 0:
                continue  # nothing labelled: nothing to learn or score
            name = f"{i:03d}_{image.stem}_r{r:05d}_c{c:05d}.tif"
            _write_chip(out / "images" / name, src, window, src.read(window=window))
            _write_chip(out / "labels" / name, src, window, label[None], label=True)
            records.append(
                {
                    "image": f"images/{name}",
                    "label": f"labels/{name}",
                    "split": split,
                    "source": i,
                    "window": {"row": r, "col": c, "height": size, "width": size},
                    "class_counts": {
                        str(k): int(n) for k, n in enumerate(counts) if n and k != NODATA
                    },
                    "unlabelled": int(counts[NODATA]),
                }
            )
    return records


def _source_record(image: Path, label_path: Path, src, val_blocks: set) -> dict:
    return {
        "image": str(image.resolve()),
        "labels": str(label_path.resolve()),
        "height": src.height,
        "width": src.width,
        "crs": src.crs.to_string() if src.crs else None,
        "validation_blocks": sorted([r, c] for r, c in val_blocks),
    }


def read_index(directory: str | os.PathLike) -> dict:
    """The ``index.json`` of a chip directory.

    Raises
    ------
    SourceError
        Missing or not a chip index.
    """
    path = Path(directory) / INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SourceError(
            f"cannot read the chip index ({exc})",
            source=path,
            fix="pass a directory written by `agrivision chips`",
        ) from exc
    if not isinstance(index, dict) or index.get("format") != "agrivision-chips":
        raise SourceError("not a chip index", source=path, fix="run `agrivision chips` again")
    return index


def chip_pairs(directory: str | os.PathLike, split: str) -> list[Pair]:
    """Image/label pairs of the ``train`` or ``validation`` chips of a chip directory.

    Raises
    ------
    SourceError
        Unreadable index, or no chip of that split.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}", fix=f"use one of {SPLITS}")
    base = Path(directory)
    pairs = [
        Pair(base / rec["image"], base / rec["label"], False)
        for rec in read_index(base)["chips"]
        if rec["split"] == split
    ]
    if not pairs:
        raise SourceError(
            f"no {split} chips", source=base, fix="raise or lower --val-fraction in `chips`"
        )
    return pairs


def _split(
    r: int, c: int, size: int, buffer: int, block: int, shape: tuple[int, int], val: set
) -> str | None:
    """``validation`` if the chip lies in validation blocks only, ``train`` if the chip grown
    by ``buffer`` meets none, else None."""

    def blocks(r0: int, r1: int, c0: int, c1: int) -> set[tuple[int, int]]:
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, shape[0]), min(c1, shape[1])
        return {
            (br * block, bc * block)
            for br in range(r0 // block, (r1 - 1) // block + 1)
            for bc in range(c0 // block, (c1 - 1) // block + 1)
        }

    if blocks(r, r + size, c, c + size) <= val:
        return "validation"
    if not blocks(r - buffer, r + size + buffer, c - buffer, c + size + buffer) & val:
        return "train"
    return None


def _shape(path: Path) -> tuple[int, int]:
    try:
        with _quiet(), rasterio.open(path) as src:
            return src.height, src.width
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"cannot open image ({exc})", source=path) from exc


def _open_labels(path: Path, shape: tuple[int, int]):
    """Open a label raster that must have ``shape`` (SourceError otherwise)."""
    try:
        with _quiet():
            src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(f"cannot open label raster ({exc})", source=path) from exc
    if (src.height, src.width) != shape:
        src.close()
        raise SourceError(
            f"label raster is {src.height}x{src.width}, the image {shape[0]}x{shape[1]}",
            source=path,
            fix="labels must be on the image's pixel grid",
        )
    return src


def _write_chip(path: Path, src, window: Window, data: np.ndarray, *, label: bool = False) -> None:
    georef = {}
    if src.crs is not None:
        georef = {"crs": src.crs, "transform": src.window_transform(window)}
    descriptions = ["class"] if label else src.descriptions
    try:
        write_geotiff(
            data.astype(np.uint8, copy=False) if label else data, path, nodata=NODATA if label else src.nodata,
            descriptions=descriptions, **georef,
        )  # fmt: skip
    except rasterio.errors.RasterioIOError as exc:
        raise OutputError(f"cannot write chip ({exc})", source=path) from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Plain images have no georeferencing: expected here, not worth a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield

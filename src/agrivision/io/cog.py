"""Cloud-Optimized GeoTIFF writer: every raster agrivision writes goes through :func:`to_cog`,
or, where a COG does not fit, through the plain GeoTIFF writer it builds on
(:mod:`agrivision.io.geotiff`).

How it writes: the lazy data are computed chunk by chunk with
:func:`~agrivision.io.blocks.store_blocks` (:func:`dask.array.store` locally; on a
dask.distributed cluster the workers compute the chunks and this process writes them, since an
open rasterio dataset cannot travel to a worker) into an *uncompressed* tiled GTiff staging
file (under ``/vsimem/`` when small, beside the target otherwise), so memory stays bounded by
the chunk size; GDAL's COG driver then compresses it, builds the overviews and lays out the file
(IFDs first, overviews before full resolution) with ``NUM_THREADS=ALL_CPUS``. An
uncompressed staging file is what keeps the peak memory at the chunk size without costing
time (measurements in ``benchmarks/README.md``). The final file is renamed into place
atomically.

Compression: ZSTD level 1 with a predictor by default. Encoding is most of the time a COG
takes, and for reflectance and index rasters ZSTD level 1 makes files as small as DEFLATE's
default level in a fraction of its time (``benchmarks/README.md``). ZSTD in GeoTIFF is read by
GDAL >= 2.3 and so QGIS 3; ``compress="deflate"`` writes the most widely readable files.

Band layout
-----------
- ``xr.Dataset``: one band per data variable (description = variable name).
- ``xr.DataArray`` with one leading dimension (``band``, ``time``, ...): one band per label;
  descriptions are the labels, ISO dates for datetimes (``2024-06-01``).
- 2-D ``xr.DataArray``: one band (description = its name).
- A Dataset with a ``time`` dimension of length one is written as that date; longer time
  series are refused (write one variable, which gives one band per date).

Class rasters: pass ``colormap`` (written as the GDAL colour table that QGIS shows) and
``class_names``; the names are stored as the dataset tag ``CLASS_NAMES``, a JSON object
``{"0": "background", "1": "healthy", ...}`` (read with ``json.loads(src.tags()["CLASS_NAMES"])``).
No ``.aux.xml`` sidecar is written, so the output stays one atomic file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import rasterio.env
import rasterio.shutil
import xarray as xr
from rasterio.io import MemoryFile

from agrivision.errors import MissingCRSError, OutputError
from agrivision.io.atomic import atomic_path, check_writable
from agrivision.io.blocks import store_blocks
from agrivision.io.geotiff import BlockWriter, set_metadata

#: Staging files up to this size in all live in memory (``/vsimem/``); the rest on disk.
#: Small: an in-memory staging file is a whole raster held in RAM (a 6000² uint8 class
#: raster is 36 MB), which a chunked computation must not need.
MEMORY_STAGING_BYTES = 16 * 2**20
#: GDAL block cache (MB) during the COG copy when GDAL_CACHEMAX is not set by the user.
COPY_CACHE_MB = 64
#: Default codec and the level used when none is given (codecs not listed: GDAL's default).
DEFAULT_COMPRESS = "zstd"
DEFAULT_LEVELS: Mapping[str, int] = {"zstd": 1}
_RESAMPLING = ("nearest", "average", "bilinear", "cubic", "cubicspline", "lanczos", "mode", "rms")
_OPTIONS = frozenset(
    ("nodata", "dtype", "compress", "level", "predictor", "blocksize", "overviews", "resampling",
     "descriptions", "colormap", "class_names", "tags", "overwrite")
)  # fmt: skip

Raster = xr.DataArray | xr.Dataset


def to_cog(
    data: Raster,
    path: str | os.PathLike,
    *,
    nodata: float | None = None,
    dtype: str | np.dtype | None = None,
    compress: str = DEFAULT_COMPRESS,
    level: int | None = None,
    predictor: int | None = None,
    blocksize: int = 512,
    overviews: str | None = "auto",
    resampling: str | None = None,
    descriptions: Sequence[str | None] | None = None,
    colormap: Mapping[int, tuple[int, ...]] | None = None,
    class_names: Mapping[int, str] | None = None,
    tags: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a (lazy) georeferenced raster as a Cloud-Optimized GeoTIFF, atomically.

    Parameters
    ----------
    data
        Dataset or DataArray on a north-up grid with a CRS (rioxarray), dask- or numpy-backed;
        see the module docstring for how variables/labels become bands.
    path
        Output ``.tif``; written through a temporary file and renamed on success.
    nodata
        Nodata value; default NaN for float data, the array's ``rio.nodata`` (or none) for
        integers. NaNs are replaced by a numeric ``nodata`` given for float output.
    dtype
        Output data type (default: the input's; booleans become uint8).
    compress, level, predictor
        GDAL compression (``zstd``, ``deflate``, ``lzw``, ``lerc``, ``none``...), its level
        (None: 1 for ZSTD, GDAL's default for the others) and predictor (default 3 for
        floats, 2 for integers).
    blocksize
        Tile edge in pixels (multiple of 16).
    overviews
        ``"auto"``: halvings until the raster fits one tile (GDAL COG ``OVERVIEWS=AUTO``);
        ``None`` or ``"none"``: no overviews.
    resampling
        Overview resampling; default ``"nearest"`` for integers (classes), ``"average"`` for
        floats.
    descriptions
        Band descriptions overriding the defaults (one per band).
    colormap
        ``{value: (r, g, b[, a])}`` colour table (uint8/uint16 output only; GeoTIFF stores
        it on band 1).
    class_names
        ``{value: name}``, stored as the JSON tag ``CLASS_NAMES``.
    tags
        Extra dataset tags (values are converted to strings).
    overwrite
        Replace an existing file (default) or raise :class:`OutputError`.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    MissingCRSError
        ``data`` has no CRS.
    OutputError
        Unsupported layout or options, or an output that cannot be written.
    """
    options = {k: v for k, v in locals().items() if k in _OPTIONS}
    return to_cogs([(data, path)], **options)[0]


def to_cogs(
    jobs: Sequence[tuple[Raster, str | os.PathLike] | tuple[Raster, str | os.PathLike, dict]],
    **options: Any,
) -> list[Path]:
    """Write several rasters as COGs in one pass over their (shared) dask graphs.

    Use this instead of repeated :func:`to_cog` calls when the outputs derive from the same
    lazy computation (e.g. all bands of a scene): each chunk is then computed once.

    Parameters
    ----------
    jobs
        ``(data, path)`` or ``(data, path, {option: value})`` tuples; per-job options
        override ``options``.
    **options
        Keyword options of :func:`to_cog` shared by all jobs.

    Returns
    -------
    list of Path
        The written files, in job order.
    """
    prepared = []
    for spec in jobs:
        data, path, own = spec if len(spec) == 3 else (*spec, {})
        opts = {**options, **own}
        unknown = set(opts) - _OPTIONS
        if unknown:
            raise OutputError(f"unknown COG option(s) {sorted(unknown)}", source=path)
        prepared.append(_prepare(data, path, **opts))
    budget = MEMORY_STAGING_BYTES  # shared: all staging files exist at the same time
    with contextlib.ExitStack() as stack:
        targets = []
        for job in prepared:
            in_memory = job.array.nbytes <= budget
            budget -= int(job.array.nbytes) if in_memory else 0
            targets.append(stack.enter_context(_staging(job, in_memory=in_memory)))
        store_blocks([job.array for job in prepared], targets)
        for job, target in zip(prepared, targets, strict=True):
            target.close()
            if job.nodata is not None and not target.any_valid:
                warnings.warn(f"{job.path}: every pixel is nodata", UserWarning, stacklevel=2)
            with (
                gdal_cache_limit(COPY_CACHE_MB),
                atomic_path(job.path, overwrite=job.overwrite) as tmp,
            ):
                rasterio.shutil.copy(target.name, tmp, driver="COG", **job.cog_options)
    return [job.path for job in prepared]


@dataclass
class _Job:
    path: Path
    array: da.Array  # (band, y, x) in the output dtype
    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    nodata: float | None
    descriptions: list[str | None]
    tags: dict[str, str]
    colormap: Mapping[int, tuple[int, ...]] | None
    blocksize: int
    overwrite: bool
    cog_options: dict[str, Any] = field(default_factory=dict)


def _prepare(
    data: Raster,
    path: str | os.PathLike,
    *,
    nodata: float | None = None,
    dtype: str | np.dtype | None = None,
    compress: str = DEFAULT_COMPRESS,
    level: int | None = None,
    predictor: int | None = None,
    blocksize: int = 512,
    overviews: str | None = "auto",
    resampling: str | None = None,
    descriptions: Sequence[str | None] | None = None,
    colormap: Mapping[int, tuple[int, ...]] | None = None,
    class_names: Mapping[int, str] | None = None,
    tags: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> _Job:
    target = check_writable(path, overwrite=overwrite)
    if not isinstance(data, xr.DataArray | xr.Dataset):
        raise OutputError(
            f"expected an xarray DataArray or Dataset, got {type(data).__name__}", source=target
        )
    crs = data.rio.crs
    if crs is None:
        raise MissingCRSError(
            "the raster to write has no CRS", source=target,
            fix="set one first, e.g. data.rio.write_crs('EPSG:32633')",
        )  # fmt: skip
    # Recomputed from the coordinates: a cached GeoTransform goes stale after coarsen/strides.
    recalc = data.sizes[data.rio.x_dim] > 1 and data.sizes[data.rio.y_dim] > 1
    transform = data.rio.transform(recalc=recalc)
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise OutputError(
            "grid is not north-up (rotated, or y increasing)", source=target,
            fix="sort y descending (data.sortby('y', ascending=False)) or reproject",
        )  # fmt: skip
    bands, labels = _bands(data, target)
    out_dtype = np.dtype(dtype) if dtype is not None else bands.dtype
    if out_dtype == np.bool_:
        out_dtype = np.dtype(np.uint8)
    is_float = np.issubdtype(out_dtype, np.floating)
    if nodata is None:
        nodata = np.nan if is_float else _int_nodata(data)
    if is_float and nodata is not None and not np.isnan(nodata):
        bands = da.where(da.isnan(bands), nodata, bands)
    array = bands.astype(out_dtype) if bands.dtype != out_dtype else bands
    if descriptions is not None:
        if len(descriptions) != array.shape[0]:
            raise OutputError(
                f"{len(descriptions)} descriptions for {array.shape[0]} bands", source=target
            )
        labels = list(descriptions)
    if colormap is not None and out_dtype not in (np.uint8, np.uint16):
        raise OutputError(
            f"a colour table needs uint8 or uint16 data, not {out_dtype}", source=target,
            fix="pass dtype='uint8' (class codes 0..255)",
        )  # fmt: skip
    if blocksize % 16 or blocksize <= 0:
        raise OutputError(f"blocksize must be a positive multiple of 16, got {blocksize}")
    resampling = resampling or ("average" if is_float else "nearest")
    if resampling.lower() not in _RESAMPLING:
        raise OutputError(
            f"unknown overview resampling {resampling!r}", source=target,
            fix=f"use one of {', '.join(_RESAMPLING)}",
        )  # fmt: skip
    all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    if class_names is not None:
        all_tags["CLASS_NAMES"] = json.dumps({str(int(k)): v for k, v in class_names.items()})
    cog = {
        "COMPRESS": compress.upper(),
        "BLOCKSIZE": blocksize,
        "OVERVIEWS": "NONE" if overviews in (None, False, "none") else "AUTO",
        "OVERVIEW_RESAMPLING": resampling.upper(),
        "NUM_THREADS": "ALL_CPUS",
        "BIGTIFF": "IF_SAFER",
    }
    if compress.lower() != "none":
        cog["PREDICTOR"] = predictor if predictor is not None else (3 if is_float else 2)
    level = DEFAULT_LEVELS.get(compress.lower()) if level is None else level
    if level is not None:
        cog["LEVEL"] = level
    return _Job(
        path=target, array=array, crs=crs, transform=transform, nodata=nodata,
        descriptions=labels, tags=all_tags, colormap=colormap, blocksize=blocksize,
        overwrite=overwrite, cog_options=cog,
    )  # fmt: skip


def _bands(data: Raster, target: Path) -> tuple[da.Array, list[str | None]]:
    """``(band, y, x)`` dask array and default band descriptions."""
    y, x = data.rio.y_dim, data.rio.x_dim
    if isinstance(data, xr.Dataset):
        if "time" in data.dims:
            if data.sizes["time"] != 1:
                raise OutputError(
                    f"Dataset has {data.sizes['time']} dates; a COG holds one set of bands",
                    source=target,
                    fix="select a date (ds.isel(time=-1)) or write one variable "
                    "(a DataArray with a time dimension becomes one band per date)",
                )
            data = data.isel(time=0)
        names = [n for n, v in data.data_vars.items() if set(v.dims) == {y, x}]
        if not names:
            raise OutputError("Dataset has no (y, x) variables to write", source=target)
        arrays = [_dask(data[n].transpose(y, x)) for n in names]
        dtype = np.result_type(*arrays)
        return da.stack([a.astype(dtype) for a in arrays]), [str(n) for n in names]
    extra = [d for d in data.dims if d not in (y, x)]
    if not extra:
        return _dask(data.transpose(y, x))[None], [None if data.name is None else str(data.name)]
    if len(extra) > 1:
        raise OutputError(
            f"cannot write dimensions {tuple(data.dims)}: at most one besides ({y}, {x})",
            source=target, fix="select or stack the extra dimensions first",
        )  # fmt: skip
    dim = extra[0]
    return _dask(data.transpose(dim, y, x)), _labels(data[dim], data.attrs)


def _labels(coord: xr.DataArray, attrs: Mapping) -> list[str | None]:
    values = coord.values
    if np.issubdtype(values.dtype, np.datetime64):
        stamps = pd.DatetimeIndex(values)
        midnight = bool((stamps == stamps.normalize()).all())
        return [s.strftime("%Y-%m-%d") if midnight else s.isoformat() for s in stamps]
    if np.issubdtype(values.dtype, np.integer):  # rioxarray's band numbers 1..n
        long_name = attrs.get("long_name")
        if isinstance(long_name, list | tuple) and len(long_name) == len(values):
            return [str(v) for v in long_name]
        return [None] * len(values)
    return [str(v) for v in values]


def _dask(arr: xr.DataArray) -> da.Array:
    data = arr.data
    return data if isinstance(data, da.Array) else da.from_array(data, chunks=2048)


def _int_nodata(data: Raster) -> float | None:
    value = data.rio.nodata if isinstance(data, xr.DataArray) else None
    return None if value is None else float(value)


@contextlib.contextmanager
def _staging(job: _Job, *, in_memory: bool) -> Iterator[BlockWriter]:
    """Open an uncompressed tiled GTiff with the job's metadata; removed on exit."""
    count, height, width = job.array.shape
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": count,
        "dtype": job.array.dtype.name, "crs": job.crs, "transform": job.transform,
        "nodata": job.nodata, "tiled": True, "blockxsize": job.blocksize,
        "blockysize": job.blocksize, "interleave": "band", "photometric": "minisblack",
        "compress": "none", "bigtiff": "if_needed",
    }  # fmt: skip
    with contextlib.ExitStack() as cleanup:
        if in_memory:
            memfile = cleanup.enter_context(MemoryFile(ext=".tif"))
            dataset = memfile.open(**profile)
        else:
            fd, name = tempfile.mkstemp(
                prefix=f".{job.path.stem}.", suffix=".staging.tif", dir=job.path.parent
            )
            os.close(fd)
            cleanup.callback(_remove, Path(name))
            dataset = rasterio.open(name, "w", **profile)
        cleanup.callback(dataset.close)
        set_metadata(dataset, job.descriptions, job.tags, colormap=job.colormap)
        yield BlockWriter(dataset, job.nodata)


def gdal_cache_limit(megabytes: int) -> contextlib.AbstractContextManager:
    """Cap GDAL's block cache at ``megabytes`` MB inside the block, unless the user set
    ``GDAL_CACHEMAX`` (environment or an enclosing ``rasterio.Env``).

    GDAL's default cache is 5 % of the RAM, and it fills with decoded blocks during the COG
    copy, so peak memory would grow with the raster instead of the chunk. The cache is
    process-wide, so the limit holds in dask's threads. rasterio hands an integer
    ``GDAL_CACHEMAX`` to ``GDALSetCacheMax64``, which counts bytes, not megabytes.
    """
    configured = "GDAL_CACHEMAX" in os.environ or (
        rasterio.env.hasenv() and "GDAL_CACHEMAX" in rasterio.env.getenv()
    )
    return contextlib.nullcontext() if configured else rasterio.Env(GDAL_CACHEMAX=megabytes * 2**20)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

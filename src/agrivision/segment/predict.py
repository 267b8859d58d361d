"""Whole-scene inference: blended sliding windows over dask chunks with a halo.

The windows lie on one global grid (model pixel ``k * stride`` from the scene's top-left
corner), and every chunk, read with a halo, runs exactly the windows that touch its core and
blends them with the same linear-ramp weights. A pixel's prediction therefore depends only on
the scene, never on the chunking; memory is bounded by the chunk size.

Nodata: a pixel where any model band is NaN gets class 255 and probabilities 255.
Probabilities are uint8, ``p = value / 254``.

Models are loaded once per process: a checkpoint directory given to :func:`segment` is kept
in a module-level cache keyed by (resolved path, modification times of ``model.json`` and
``model.safetensors``, device, engine, precision, compile). Dask tasks carry only that key
(it pickles to the path), never the model, so each ``dask.distributed`` worker process loads a
checkpoint once and reuses it for every chunk; rewriting the checkpoint changes the key.
:func:`loaded_models` lists the cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import torch
import torch.nn.functional as F
import xarray as xr
from dask.array.overlap import ensure_minimum_chunksize

from agrivision.errors import BandNotFoundError, ConfigError
from agrivision.io.blocks import store_blocks
from agrivision.io.geotiff import geotiff_writer
from agrivision.segment.checkpoint import (
    METADATA,
    WEIGHTS,
    CheckpointMeta,
    Segmenter,
    load_checkpoint,
    read_metadata,
)
from agrivision.segment.device import resolve_device
from agrivision.segment.engine import Engine, build_engine, engine_bf16, resolve_engine
from agrivision.segment.nodata import NODATA
from agrivision.segment.prepare import normalise, pool
from agrivision.segment.windows import window_size, window_starts

PROBABILITY_SCALE = 254  # probabilities are stored as round(p * 254); 255 stays nodata
CPU_CHUNK = 2048  # default chunk edge (source pixels); memory per task ~ chunk^2 * bands * 8 B
GPU_CHUNK = 4096
# Default largest window: this stride plus the overlap (model pixels). Larger windows need fewer
# overlaps; beyond ~768 pixels OpenVINO's cost per pixel on a CPU no longer falls.
LARGEST_STRIDE = 1024
CPU_BATCH_PIXELS = 2**20  # model pixels per call on a CPU (4 windows of 512, 1 of 1056)

# One model call at a time per process: dask's threads then overlap reading with compute, and
# torch's own intra-op threads use the cores (no oversubscription, one GPU stream).
_RUN_LOCK = threading.Lock()
_CACHE_LOCK = threading.Lock()
_MODELS: dict[tuple, Engine] = {}


def segment(
    scene: xr.Dataset,
    model: Segmenter | str | os.PathLike,
    *,
    probabilities: bool = False,
    device: str = "auto",
    batch_size: int | None = None,
    chunks: int | None = None,
    overlap: int | None = None,
    window: int | None = None,
    compile: bool = False,
    precision: str = "auto",
    engine: str = "auto",
) -> xr.Dataset:
    """Segment a Scene of any size lazily with a U-Net.

    Parameters
    ----------
    scene
        Scene with the model's bands (reflectance 0..1, NaN = nodata), dims ``(y, x)`` or
        ``(time, y, x)``; any CRS (the output is on the scene's grid).
    model
        A loaded :class:`~agrivision.segment.checkpoint.Segmenter` or a checkpoint directory
        (loaded once per process and reused by every chunk).
    probabilities
        Also return class probabilities (uint8, ``value / 254``).
    device
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    batch_size
        Windows per model call (default 32 on CUDA; on a CPU as many as make one megapixel,
        at least one: memory, not speed, grows with it there).
    chunks
        Chunk edge in source pixels (default 2048 on CPU, 4096 on CUDA, at least four
        windows, rounded to whole window strides). Results do not depend on it; peak memory
        grows with its square.
    overlap
        Overlap of neighbouring windows in model pixels (default: an eighth of the model's
        training window); the blending ramp is this wide.
    window
        Largest window edge in model pixels (default 1024 plus the overlap, rounded up to a
        multiple of ``2 ** encoder_depth``, and at least the model's window). Each chunk is
        read with a halo one window deep. The scene is covered by the fewest windows that
        fit, sized to it (see :func:`~agrivision.segment.windows.window_size`), so results
        depend on the scene's size, never on the chunking.
    compile
        ``torch.compile`` the model (worth it for large scenes on a GPU).
    precision
        ``auto`` (bf16 autocast on a GPU; bf16 in OpenVINO on a CPU with native bf16,
        AVX512-BF16 or AMX; fp32 otherwise), ``fp32`` or ``bf16`` (on a CPU with native bf16
        about twice as fast as fp32; probabilities change slightly, classes only where two
        nearly tie).
    engine
        ``auto``, ``torch`` or ``openvino`` (the ``openvino`` extra; CPU only). ``auto`` runs
        a checkpoint directory on the CPU with OpenVINO when it is installed (faster, classes
        equal to PyTorch's but where two classes tie to within float rounding), PyTorch
        otherwise.

    Returns
    -------
    xarray.Dataset
        Lazy ``classes`` (uint8, 255 = nodata) and, if asked, ``probabilities`` (uint8,
        dims ``(class, y, x)``), with the scene's coordinates and CRS.

    Raises
    ------
    BandNotFoundError
        The scene lacks a band the model needs.
    ConfigError
        Invalid device, precision, engine, batch size, chunks or overlap.
    """
    dev = resolve_device(device)
    handle = _handle(model, dev, compile, engine, precision)
    spec = handle.meta.spec
    missing = [b for b in spec.bands if b not in scene.data_vars]
    if missing:
        raise BandNotFoundError(
            f"scene lacks band(s) {missing} that the model needs (model bands: {list(spec.bands)})",
            source=handle.path or "model",
            fix="open the scene with these bands (check the band names with `agrivision info`)",
        )
    overlap = spec.window // 8 if overlap is None else overlap
    if not 0 <= overlap < spec.window:
        raise ConfigError(f"overlap must be 0..{spec.window - 1} model pixels, got {overlap}")
    multiple = 2**spec.encoder_depth
    if window is None:
        # Strides of up to LARGEST_STRIDE: a 2048-pixel scene takes 2 x 2 windows.
        largest = max(spec.window, -(-(LARGEST_STRIDE + overlap) // multiple) * multiple)
    else:
        largest = window
    if largest % multiple or largest <= overlap:
        raise ConfigError(
            f"window must be a multiple of {multiple} model pixels above the overlap "
            f"({overlap}), got {largest}"
        )
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if chunks is not None and chunks < 16:
        raise ConfigError(f"chunks must be >= 16 pixels, got {chunks}")
    params = _Params(
        largest=largest,
        overlap=overlap,
        multiple=multiple,
        factor=spec.downsample,
        batch=batch_size or (32 if dev.type == "cuda" else None),
        probabilities=probabilities,
        mean=tuple(handle.meta.normalisation.mean),
        std=tuple(handle.meta.normalisation.std),
    )
    variables = [scene[b] for b in spec.bands]
    if "time" in variables[0].dims:
        parts = [
            _segment_2d([v.isel(time=i) for v in variables], handle, params, chunks)
            for i in range(variables[0].sizes["time"])
        ]
        out = xr.concat(parts, dim=variables[0]["time"])
    else:
        out = _segment_2d(variables, handle, params, chunks)
    out.attrs.update(
        classes=list(spec.classes), nodata=NODATA, probability_scale=1 / PROBABILITY_SCALE
    )
    if scene.rio.crs is not None:
        out = out.rio.write_crs(scene.rio.crs)
    return out


def loaded_models() -> list[tuple]:
    """Keys ``(path, mtimes_ns, device, engine, bf16, compile)`` of the models cached in this
    process."""
    with _CACHE_LOCK:
        return list(_MODELS)


@dataclass(frozen=True)
class _Params:
    largest: int  # model pixels: the largest window
    overlap: int  # model pixels
    multiple: int  # window edges are multiples of this
    factor: int  # source pixels per model pixel
    batch: int | None  # None: CPU_BATCH_PIXELS per call
    probabilities: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class _Handle:
    """Names the model; chunks fetch it from the process cache instead of carrying it."""

    meta: CheckpointMeta
    path: Path | None
    device: torch.device
    engine: str  # torch or openvino
    bf16: bool
    compile: bool
    local: Engine | None = None  # an in-memory model, already prepared
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def model(self) -> Engine:
        if self.local is not None:
            return self.local
        key = self._key()
        with _CACHE_LOCK:
            if key not in _MODELS:
                _MODELS[key] = self.prepare(load_checkpoint(key[0]).model)
            return _MODELS[key]

    def _key(self) -> tuple:
        assert self.path is not None
        stamp = _stamp(self.path)
        return (str(self.path), stamp, str(self.device), self.engine, self.bf16, self.compile)

    def prepare(self, model: torch.nn.Module) -> Engine:
        spec = self.meta.spec
        return build_engine(
            model, self.engine, device=self.device, bands=len(spec.bands), window=spec.window,
            bf16=self.bf16, compile=self.compile, tta=spec.tta,
        )  # fmt: skip

    def __dask_tokenize__(self) -> tuple:
        # Cheap and stable: never hash (pickle) the model itself.
        return ("memory", self.token) if self.local is not None else self._key()

    def __reduce__(self):
        # dask.distributed workers load the checkpoint from its path, once per process.
        if self.path is None:
            raise ConfigError(
                "an in-memory model cannot be sent to dask workers",
                fix="save it with save_checkpoint and pass the checkpoint directory",
            )
        args = (self.meta, self.path, self.device, self.engine, self.bf16, self.compile)
        return (_Handle, args)


def _handle(
    model: Segmenter | str | os.PathLike,
    device: torch.device,
    compile: bool,
    engine: str,
    precision: str,
) -> _Handle:
    name = resolve_engine(engine, device, checkpoint=not isinstance(model, Segmenter))
    bf16 = engine_bf16(name, device, precision)
    if isinstance(model, Segmenter):
        handle = _Handle(model.meta, model.path, device, name, bf16, compile)
        return replace(handle, local=handle.prepare(model.model))
    path = Path(model).resolve()
    if path.name == METADATA:
        path = path.parent
    return _Handle(read_metadata(path / METADATA), path, device, name, bf16, compile)


def _stamp(path: Path) -> tuple[int, ...]:
    return tuple(p.stat().st_mtime_ns for p in (path / METADATA, path / WEIGHTS) if p.exists())


def _segment_2d(
    variables: list[xr.DataArray], handle: _Handle, params: _Params, chunks: int | None
) -> xr.Dataset:
    arr = da.stack([da.asarray(v.data).astype(np.float32, copy=False) for v in variables])
    _, height, width = arr.shape
    f = params.factor
    window = tuple(
        window_size(-(-n // f), params.largest, params.overlap, params.multiple)
        for n in (height, width)
    )
    if params.batch is None:
        params = replace(params, batch=max(1, CPU_BATCH_PIXELS // (window[0] * window[1])))
    edges = []
    for size in window:
        stride = (size - params.overlap) * f
        if chunks is None:
            # Whole strides per chunk: chunk edges then fall on window starts, and each chunk
            # runs only one extra column and row of windows (at least four of its own).
            target = max(GPU_CHUNK if handle.device.type == "cuda" else CPU_CHUNK, 4 * size * f)
            edges.append(max(1, round(target / stride)) * stride)
        else:
            edges.append(-(-chunks // f) * f)
    # The first window touching a chunk's core starts less than a window before it.
    # (dask wants a halo no deeper than the array: then one chunk holds the whole axis).
    depth = (min(window[0] * f, height), min(window[1] * f, width))
    ychunks = ensure_minimum_chunksize(depth[0], _regular(height, edges[0]))
    xchunks = ensure_minimum_chunksize(depth[1], _regular(width, edges[1]))
    arr = arr.rechunk((arr.shape[0], ychunks, xchunks))
    layers = 1 + (len(handle.meta.spec.classes) if params.probabilities else 0)
    out = da.map_overlap(
        _predict_block,
        arr,
        depth={0: 0, 1: depth[0], 2: depth[1]},
        boundary="none",
        trim=False,
        dtype=np.uint8,
        chunks=((layers,), ychunks, xchunks),
        meta=np.empty((0, 0, 0), np.uint8),
        handle=handle,
        params=params,
        window=window,
        shape=(height, width),
        depth_px=depth,
    )
    dims = variables[0].dims
    coords = {k: c for k, c in variables[0].coords.items() if set(c.dims) <= set(dims)}
    result = xr.Dataset({"classes": xr.DataArray(out[0], dims=dims, coords=coords)})
    if params.probabilities:
        names = list(handle.meta.spec.classes)
        result["probabilities"] = xr.DataArray(
            out[1:], dims=("class", *dims), coords={**coords, "class": names}
        )
    return result


def _regular(size: int, edge: int) -> tuple[int, ...]:
    return (edge,) * (size // edge) + ((size % edge,) if size % edge else ())


def _predict_block(
    block: np.ndarray,
    *,
    handle: _Handle,
    params: _Params,
    window: tuple[int, int],
    shape: tuple[int, int],
    depth_px: tuple[int, int],
    block_info: dict | None = None,
) -> np.ndarray:
    """Blend the windows that touch this chunk's core; return the core only."""
    assert block_info is not None
    _, (cy0, cy1), (cx0, cx1) = block_info[None]["array-location"]
    origin = (cy0 - min(depth_px[0], cy0), cx0 - min(depth_px[1], cx0))
    model = handle.model()
    with _RUN_LOCK, torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(block))
        if handle.device.type == "cuda":
            x = x.pin_memory().to(handle.device, non_blocking=True)
        core = ((cy0, cy1), (cx0, cx1))
        probs, valid = _blend(model, x, origin, core, shape, window, params)
        classes = probs.argmax(dim=0).to(torch.uint8)
        classes[~valid] = NODATA
        layers = [classes[None]]
        if params.probabilities:
            quantised = (probs * PROBABILITY_SCALE).round_().to(torch.uint8)
            quantised[:, ~valid] = NODATA
            layers.append(quantised)
        return torch.cat(layers).cpu().numpy()


def _blend(
    model: Engine,
    x: torch.Tensor,
    origin: tuple[int, int],
    core: tuple[tuple[int, int], tuple[int, int]],
    shape: tuple[int, int],
    window: tuple[int, int],
    p: _Params,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blended class probabilities ``(K, h, w)`` and validity ``(h, w)`` of the core."""
    f = p.factor
    (cy0, cy1), (cx0, cx1) = core
    oy, ox = origin
    valid = torch.isfinite(x[:, cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox]).all(dim=0)
    xm = normalise(pool(x, f), p.mean, p.std)  # model grid; origin // f is a whole pixel
    # Model-pixel rows/cols whose blended value is needed: the core, plus one pixel each side
    # for the bilinear upsampling when the model runs at a coarser resolution.
    margin = 1 if f > 1 else 0
    scene_m = (-(-shape[0] // f), -(-shape[1] // f))
    need = [
        (max(c0 // f - margin, 0), min(-(-c1 // f) + margin, n))
        for (c0, c1), n in zip(core, scene_m, strict=True)
    ]
    starts = [
        [s for s in window_starts(n, w, w - p.overlap, pad_short=True) if s < b and s + w > a]
        for (a, b), n, w in zip(need, scene_m, window, strict=True)
    ]
    lo = [s[0] for s in starts]
    hi = [s[-1] + w for s, w in zip(starts, window, strict=True)]
    om = (oy // f, ox // f)
    # Only a scene smaller than a window has windows reaching past its edge: they see zeros
    # (the training mean).
    pad = [max(0, hi[i] - om[i] - xm.shape[i + 1]) for i in range(2)]
    inside = [pad[i] == 0 or om[i] + xm.shape[i + 1] == scene_m[i] for i in range(2)]
    if lo[0] < om[0] or lo[1] < om[1] or not all(inside):
        raise RuntimeError("halo smaller than the windows need")  # a bug, not a user error
    if any(pad):
        xm = F.pad(xm, (0, pad[1], 0, pad[0]))
    weight = _ramp(window, p.overlap, x.device)
    wy, wx = window
    acc: torch.Tensor | None = None
    wsum: torch.Tensor | None = None
    corners = [(y, x_) for y in starts[0] for x_ in starts[1]]
    assert p.batch is not None  # set by _segment_2d
    for i in range(0, len(corners), p.batch):
        group = corners[i : i + p.batch]
        batch = torch.stack(
            [xm[:, y - om[0] : y - om[0] + wy, x_ - om[1] : x_ - om[1] + wx] for y, x_ in group]
        )
        prob = torch.softmax(model(batch), dim=1) * weight
        if acc is None or wsum is None:
            n_classes = prob.shape[1]
            acc = torch.zeros((n_classes, hi[0] - lo[0], hi[1] - lo[1]), device=x.device)
            wsum = torch.zeros((1, hi[0] - lo[0], hi[1] - lo[1]), device=x.device)
        for (y, x_), pr in zip(group, prob, strict=True):
            acc[:, y - lo[0] : y - lo[0] + wy, x_ - lo[1] : x_ - lo[1] + wx] += pr
            wsum[:, y - lo[0] : y - lo[0] + wy, x_ - lo[1] : x_ - lo[1] + wx] += weight
    if acc is None or wsum is None:
        raise RuntimeError("no window covers the block")  # a bug, not a user error
    (ya, yb), (xa, xb) = need
    probs = (acc / wsum)[:, ya - lo[0] : yb - lo[0], xa - lo[1] : xb - lo[1]]
    if f > 1:
        probs = F.interpolate(probs[None], scale_factor=f, mode="bilinear", align_corners=False)[0]
        probs = probs[:, cy0 - ya * f : cy1 - ya * f, cx0 - xa * f : cx1 - xa * f]
    return probs, valid


def _ramp(window: tuple[int, int], overlap: int, device: torch.device) -> torch.Tensor:
    """2-D weights of a ``(rows, cols)`` window: 1 inside, a linear ramp over ``overlap``
    pixels at each edge (never 0).

    Neighbouring ramps cross over the overlap, so weights of adjacent windows sum to ~1 there
    and seams fade out instead of jumping.
    """
    if overlap == 0:
        return torch.ones(window, device=device)

    def edge(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=torch.float32, device=device) + 0.5
        return torch.clamp(torch.minimum(i, n - i) / overlap, max=1.0)

    return edge(window[0])[:, None] * edge(window[1])[None, :]


def write_predictions(
    result: xr.Dataset,
    classes_path: str | os.PathLike,
    probabilities_path: str | os.PathLike | None = None,
    *,
    overwrite: bool = True,
) -> list[Path]:
    """Write the output of :func:`segment` (one date) as tiled, deflate GeoTIFFs.

    Both files are computed in one pass (each chunk runs the model once) and written
    atomically, one row of chunks at a time: dask's local scheduler would otherwise read
    input chunks far ahead of the model and hold them, so memory stays bounded by one row of
    chunks (plus halos) instead of growing with the scene.

    Returns
    -------
    list of Path
        The files written.
    """
    if probabilities_path is not None and "probabilities" not in result:
        raise ConfigError(
            "the result has no probabilities", fix="call segment(..., probabilities=True)"
        )
    if "time" in result.dims:
        raise ConfigError(
            "one GeoTIFF holds one date", fix="write result.isel(time=i) for each date"
        )
    jobs = [(result["classes"], Path(classes_path))]
    if probabilities_path is not None:
        jobs.append((result["probabilities"], Path(probabilities_path)))
    with contextlib.ExitStack() as stack:
        sources, targets = [], []
        for arr, path in jobs:
            source = arr.data if arr.ndim == 3 else arr.data[None]
            tags = {"classes": ",".join(result.attrs["classes"]), "nodata": NODATA}
            if arr.ndim == 3:
                descriptions = [str(name) for name in arr["class"].values]
                tags = {"scale": 1 / PROBABILITY_SCALE, **tags}
            else:
                descriptions = ["class"]
            writer = geotiff_writer(
                path, **_layout(result, source), descriptions=descriptions, tags=tags,
                overwrite=overwrite,
            )  # fmt: skip
            sources.append(source)
            targets.append(stack.enter_context(writer))
        start = 0
        for height in sources[0].chunks[1]:
            rows = slice(start, start + height)
            strip = [src[:, rows] for src in sources]
            # Workers of a dask.distributed cluster compute the chunks; this process writes them.
            store_blocks(strip, targets, regions=[(slice(None), rows)] * len(strip))
            start += height
    return [p for _, p in jobs]


def _layout(result: xr.Dataset, source: da.Array) -> dict:
    """Grid, dtype and tiling of a prediction GeoTIFF: 512-pixel tiles unless it is smaller."""
    count, height, width = source.shape
    layout = dict(
        count=count, height=height, width=width, dtype="uint8", nodata=NODATA,
        blocksize=512 if height >= 512 and width >= 512 else None,
    )  # fmt: skip
    if result.rio.crs is not None:
        layout.update(crs=result.rio.crs, transform=result.rio.transform())
    return layout

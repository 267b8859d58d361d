"""Whole-scene U-Net inference: agrivision (blended windows over dask chunks) vs a naive loop.

Usage: ``python benchmarks/segment.py [--quick] [--size N] [--repeat R] [--device cpu|cuda]
[--encoder E] [--model DIR]``

One randomly initialised smp U-Net (``resnet34`` encoder, 4 bands, 5 classes, 512-pixel
windows; the weights do not change the cost) is saved once as a checkpoint under
``bench-output/``; ``--model DIR`` runs a trained checkpoint instead (its bands, window and
downsampling; the agreement columns then speak of a trained model, where classes rarely tie).
A seeded float32 reflectance scene with the model's bands is built in memory in each worker
before timing starts. Contenders, each in a fresh subprocess, interleaved over
``--repeat`` rounds (default 3; the table gives medians, so that a noisy, shared machine
slows every contender alike):

* ``naive``: the anchor, the usual loop: non-overlapping 512-pixel tiles (edge tiles
  zero-padded), PyTorch fp32, batch 1, ``torch.no_grad``, argmax, no blending;
* ``agrivision``: ``segment(scene, model_dir)`` with its defaults on the dask-backed scene,
  computed into a class array: the fewest windows of at most 1024 pixels plus the overlap that
  cover the scene, overlapping by 1/8 of the model's window (64 pixels) with linear-ramp
  blending (2 x 2 windows of 1056 x 1056 on a 2048^2 scene), per-chunk halos, batches of 4
  (32 on CUDA), dask's threaded scheduler; on the CPU the checkpoint runs in OpenVINO (the
  ``openvino`` extra), in bf16 where the CPU has native bf16 (AVX512-BF16, AMX), else fp32; on
  CUDA in PyTorch with bf16 autocast, channels_last and pinned host memory;
* ``agrivision-torch`` (CPU): the same run by PyTorch fp32 (channels_last, ``inference_mode``),
  the engine of a core install and the fp32 reference of the agreement column;
* ``agrivision-torch-own-window`` (CPU): PyTorch fp32 with windows no larger than the model's
  own (512: 5 x 5 windows of 480 on a 2048^2 scene): what larger windows are worth;
* ``agrivision-openvino-fp32`` (CPU): the default run with ``precision="fp32"``;
* ``agrivision-compile`` (CUDA): the same plus ``torch.compile``.

Each worker warms up on a 1024 x 1024 corner first, untimed (model load, OpenVINO conversion,
compilation: the "setup" column). Reported: median wall time, Mpx/s, ratio to the naive loop,
CPU time of the timed run (all threads; steadier than wall time when others share the cores),
peak RSS (it includes the in-memory scene, the same for all), and the share of pixels whose class
agrees with the naive loop (which leaves seams: blending changes pixels near tile edges) and
with the blended fp32 reference (PyTorch on the CPU, the default run on CUDA). With
``--device cuda`` the default scene is a whole Sentinel-2 tile (10980 x 10980, 4 bands).
``--quick``: a 1024 x 1024 scene. CPU default: 2048 x 2048.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from harness import run_measured, write_result

OUT = Path(__file__).resolve().parents[1] / "bench-output"
BANDS = ("blue", "green", "red", "nir")
TILE = 512
SCALES = (0.1, 0.15, 0.2, 0.5)  # reflectance range of each band of the synthetic scene


def make_model(directory: Path, encoder: str) -> None:
    """Save a seeded random U-Net checkpoint (once)."""
    import torch

    from agrivision.health.schema import DEFAULT_SCHEMA
    from agrivision.segment.checkpoint import CheckpointMeta, Normalisation, save_checkpoint
    from agrivision.segment.model import ModelSpec, build_model

    if (directory / "model.json").exists():
        return
    torch.manual_seed(0)
    spec = ModelSpec(
        encoder=encoder, bands=BANDS, classes=tuple(DEFAULT_SCHEMA.names.values()), window=TILE
    )
    norm = Normalisation(mean=(0.06, 0.09, 0.08, 0.35), std=(0.03, 0.03, 0.05, 0.1))
    save_checkpoint(build_model(spec), CheckpointMeta(spec=spec, normalisation=norm), directory)


def make_scene(size: int, bands: int) -> np.ndarray:
    """``(bands, size, size)`` float32 reflectance: smooth fields plus noise (seeded)."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    n = size // 64 + 2
    scene = np.empty((bands, size, size), np.float32)
    for band in range(bands):
        scale = SCALES[band % len(SCALES)]
        smooth = ndimage.zoom(rng.random((n, n), dtype=np.float32), 64, order=1)[:size, :size]
        scene[band] = smooth * scale + rng.normal(0, 0.01, (size, size)).astype(np.float32)
    return scene


def naive(model, scene: np.ndarray, device: str) -> np.ndarray:
    """Non-overlapping tiles of the model's window, fp32, batch 1, no blending (normalisation
    and downsampling as the model's)."""
    import torch
    import torch.nn.functional as F

    from agrivision.segment.prepare import normalise, pool

    seg, meta = model
    norm, f, tile = (
        meta.normalisation,
        meta.spec.downsample,
        meta.spec.window * meta.spec.downsample,
    )
    _, h, w = scene.shape
    out = np.empty((h, w), np.uint8)
    with torch.no_grad():
        for r in range(0, h, tile):
            for c in range(0, w, tile):
                x = torch.from_numpy(scene[:, r : r + tile, c : c + tile]).to(device)
                th, tw = x.shape[1:]
                x = normalise(pool(x, f), norm.mean, norm.std)
                mh, mw = x.shape[1:]
                x = F.pad(x, (0, tile // f - mw, 0, tile // f - mh))
                logits = seg(x[None])[:, :, :mh, :mw]
                if f > 1:
                    logits = F.interpolate(logits, scale_factor=f, mode="bilinear")
                out[r : r + th, c : c + tw] = logits[0, :, :th, :tw].argmax(0).cpu().numpy()
    return out


def worker(contender: str, size: int, device: str, model_dir: Path, result: Path) -> None:
    """Run one contender once in this (fresh) process; write its timing."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import dask.array as da
    import torch
    import xarray as xr

    from agrivision.segment.checkpoint import load_checkpoint, read_metadata
    from agrivision.segment.predict import segment

    spec = read_metadata(model_dir / "model.json").spec
    bands = spec.bands
    scene = make_scene(size, len(bands))
    start = time.perf_counter()
    if contender == "naive":
        loaded = load_checkpoint(model_dir, device=device)
        model = (loaded.model, loaded.meta)
        naive(model, scene[:, :1024, :1024], device)  # warm-up
        setup = time.perf_counter() - start
        t0, c0 = time.perf_counter(), time.process_time()
        classes = naive(model, scene, device)
    else:
        options = {
            "agrivision-compile": {"compile": True},
            "agrivision-torch": {"engine": "torch"},
            "agrivision-torch-own-window": {"engine": "torch", "window": spec.window},
            "agrivision-openvino-fp32": {"precision": "fp32"},
        }.get(contender, {})

        def run(arr: np.ndarray) -> np.ndarray:
            data = da.from_array(arr, chunks=(1, 2048, 2048))
            ds = xr.Dataset({b: (("y", "x"), data[i]) for i, b in enumerate(bands)})
            return segment(ds, model_dir, device=device, **options)["classes"].data.compute()

        run(scene[:, :1024, :1024])  # warm-up (model load, conversion, compilation)
        setup = time.perf_counter() - start
        t0, c0 = time.perf_counter(), time.process_time()
        classes = run(scene)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    write_result(result, classes, seconds, setup=setup, cpu=time.process_time() - c0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1024 x 1024 scene")
    parser.add_argument("--size", type=int, help="scene side (default 2048 CPU, 10980 CUDA)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--encoder", default="resnet34", help="smp encoder (default resnet34)")
    parser.add_argument("--model", type=Path, help="a trained checkpoint directory to run")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, size, device, model_dir, result = args.worker
        worker(contender, int(size), device, Path(model_dir), Path(result))
        return

    OUT.mkdir(exist_ok=True)
    size = args.size or (1024 if args.quick else 10980 if args.device == "cuda" else 2048)
    if args.model:
        model_dir = args.model.resolve()
    else:
        model_dir = OUT / f"segment_model_{args.encoder}"
        make_model(model_dir, args.encoder)
    if args.device == "cuda":
        contenders, reference = ("naive", "agrivision", "agrivision-compile"), "agrivision"
    else:
        contenders = (
            "naive", "agrivision-torch-own-window", "agrivision-torch", "agrivision-openvino-fp32",
            "agrivision",
        )  # fmt: skip
        reference = "agrivision-torch"
    runs: dict[str, list[dict]] = {c: [] for c in contenders}
    classes = {}
    for _ in range(args.repeat):
        for c in contenders:
            result = OUT / f"segment_result_{c}.json"
            cmd = [sys.executable, __file__, "--worker", c, str(size), args.device,
                   str(model_dir), str(result)]  # fmt: skip
            polled = run_measured(cmd)
            run = json.loads(result.read_text())
            run["peak"] = max(run["peak"], polled)
            runs[c].append(run)
            classes[c] = np.load(result.with_suffix(".npy"))
    import torch

    from agrivision.segment.checkpoint import read_metadata

    spec = read_metadata(model_dir / "model.json").spec
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{os.cpu_count()} CPUs"
    mpx = size * size / 1e6
    median = {c: {k: statistics.median(r[k] for r in runs[c]) for k in runs[c][0]} for c in runs}
    lines = [
        f"U-Net ({spec.encoder}, {len(spec.bands)} bands, {len(spec.classes)} classes, "
        f"{spec.window}-px windows, {'trained: ' + str(model_dir) if args.model else 'random'}"
        f"), scene {size} x {size} "
        f"float32 ({mpx:.1f} Mpx), {args.device} ({where}), torch {torch.__version__}; "
        f"median of {args.repeat} interleaved runs per contender, each in a fresh process after "
        "an untimed 1024^2 warm-up (setup)",
        "",
        "| contender | setup (s) | time (s) | Mpx/s | vs naive | CPU (s) | CPU vs naive "
        f"| peak RSS (MB) | classes = naive | classes = {reference} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in contenders:
        m = median[c]
        lines.append(
            f"| {c} | {m['setup']:.1f} | {m['seconds']:.2f} | {mpx / m['seconds']:.2f} "
            f"| {median['naive']['seconds'] / m['seconds']:.2f}x | {m['cpu']:.1f} "
            f"| {median['naive']['cpu'] / m['cpu']:.2f}x | {m['peak'] / 2**20:,.0f} "
            f"| {(classes[c] == classes['naive']).mean():.2%} "
            f"| {(classes[c] == classes[reference]).mean():.2%} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()

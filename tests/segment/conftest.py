"""Fixtures for the segmenter tests: a tiny fast U-Net, synthetic tiles, a trained model."""

from __future__ import annotations

import os

# Spinning OpenMP threads are very slow on a shared, oversubscribed CPU (see cli/segment.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from agrivision.segment.checkpoint import CheckpointMeta, Normalisation, Segmenter
from agrivision.segment.config import load_config
from agrivision.segment.model import ModelSpec, build_model
from agrivision.segment.synthetic_tiles import BANDS, CLASSES, write_tiles
from agrivision.segment.training import train

TINY = dict(encoder="tu-mobilenetv3_small_050", encoder_depth=3, decoder_channels=(16, 8, 8))


def tiny_segmenter(
    bands=("red", "nir"), classes=("a", "b", "c"), *, window=64, downsample=1, seed=0
) -> Segmenter:
    """A randomly initialised tiny U-Net (eval mode) with plausible normalisation."""
    torch.manual_seed(seed)
    spec = ModelSpec(
        **TINY, bands=tuple(bands), classes=tuple(classes), window=window, downsample=downsample
    )
    model = build_model(spec).eval()
    norm = Normalisation(mean=(0.2,) * len(bands), std=(0.1,) * len(bands))
    return Segmenter(model, CheckpointMeta(spec=spec, normalisation=norm))


def make_scene(data: np.ndarray, bands, *, res: float = 10.0) -> xr.Dataset:
    """A north-up Scene (EPSG:32633) from a ``(bands, H, W)`` array."""
    _, h, w = data.shape
    ys = 5800000 - (np.arange(h) + 0.5) * res
    xs = 500000 + (np.arange(w) + 0.5) * res
    ds = xr.Dataset(
        {b: (("y", "x"), data[i].astype(np.float32)) for i, b in enumerate(bands)},
        coords={"y": ys, "x": xs},
    )
    return ds.rio.write_crs("EPSG:32633")


def write_config(path: Path, root: Path, **overrides) -> Path:
    """A small synthetic-tiles config (tiny model, 64 px chips) as YAML."""
    import yaml

    cfg = {
        "model": {**{k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()},
                  "bands": list(BANDS), "classes": list(CLASSES), "window": 64},
        "data": {
            "root": str(root),
            "train": {"images": "tile_00[0-3].tif", "labels": "{stem}_label.tif"},
            "evaluation": {"images": "tile_00[45].tif", "labels": "{stem}_label.tif"},
        },
        "split": {"block": 64, "val_fraction": 0.25, "buffer": 4},
        "chips": {"size": 64, "per_epoch": 32},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01, "device": "cpu", "threads": 1},
    }  # fmt: skip
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def tiles(tmp_path_factory) -> Path:
    """Six 128-px synthetic tiles with labels (4 for training, 2 for evaluation)."""
    root = tmp_path_factory.mktemp("tiles")
    write_tiles(root, n=6, size=128, seed=1)
    return root


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiles) -> tuple[Path, Path]:
    """A tiny model trained for a few steps: (model directory, config path)."""
    base = tmp_path_factory.mktemp("trained")
    cfg_path = write_config(base / "config.yaml", tiles)
    train(load_config(cfg_path), base / "model", progress=False)
    return base / "model", cfg_path


@pytest.fixture
def tiny():
    """Factory: :func:`tiny_segmenter`."""
    return tiny_segmenter


@pytest.fixture
def scene_of():
    """Factory: :func:`make_scene`."""
    return make_scene


@pytest.fixture
def config_file():
    """Factory: :func:`write_config`."""
    return write_config

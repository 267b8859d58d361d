"""U-Net segmentation: train on labelled tiles, apply to lazy scenes of any size.

Needs the ``segment`` extra (torch, segmentation-models-pytorch, safetensors). The names
below are imported on first use, so that a core install can import the modules that do not
need PyTorch (:mod:`~agrivision.segment.model_classes`, :mod:`~agrivision.segment.nodata`):
a report without a model must not require the extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agrivision.segment.checkpoint import Segmenter, load_checkpoint, save_checkpoint
    from agrivision.segment.chip_folders import write_chips
    from agrivision.segment.config import SegmentConfig, load_config
    from agrivision.segment.evaluation import evaluate
    from agrivision.segment.model import ModelSpec, build_model
    from agrivision.segment.predict import loaded_models, segment, write_predictions
    from agrivision.segment.training import TrainResult, train

_WHERE = {
    "Segmenter": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "write_chips": "chip_folders", "SegmentConfig": "config", "load_config": "config",
    "evaluate": "evaluation", "ModelSpec": "model", "build_model": "model",
    "loaded_models": "predict", "segment": "predict", "write_predictions": "predict",
    "TrainResult": "training", "train": "training",
}  # fmt: skip

__all__ = [
    "ModelSpec", "SegmentConfig", "Segmenter", "TrainResult", "build_model", "evaluate",
    "load_checkpoint", "load_config", "loaded_models", "save_checkpoint", "segment", "train",
    "write_chips", "write_predictions",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

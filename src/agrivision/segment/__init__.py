"""U-Net segmentation: train on labelled tiles, apply to lazy scenes of any size.

Needs the ``segment`` extra (torch, segmentation-models-pytorch, safetensors).
"""

from agrivision.segment.checkpoint import Segmenter, load_checkpoint, save_checkpoint
from agrivision.segment.chip_folders import write_chips
from agrivision.segment.config import SegmentConfig, load_config
from agrivision.segment.evaluate import evaluate
from agrivision.segment.model import ModelSpec, build_model
from agrivision.segment.predict import loaded_models, segment, write_predictions
from agrivision.segment.train import TrainResult, train

__all__ = [
    "ModelSpec",
    "SegmentConfig",
    "Segmenter",
    "TrainResult",
    "build_model",
    "evaluate",
    "load_checkpoint",
    "load_config",
    "loaded_models",
    "save_checkpoint",
    "segment",
    "train",
    "write_chips",
    "write_predictions",
]

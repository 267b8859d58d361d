"""Segmentation run configs (``agrivision train/evaluate CONFIG.yaml``), validated with pydantic.

Paths in a config are relative to the config file's directory. Unknown keys are errors that
name the key and the allowed keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agrivision.config import load_yaml, validate
from agrivision.segment.model import TTA, ModelSpec


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    """The network (see :class:`~agrivision.segment.model.ModelSpec`) and its initial weights."""

    encoder: str = "resnet18"
    encoder_depth: int = Field(default=5, ge=3, le=5)
    decoder_channels: tuple[int, ...] | None = None
    bands: tuple[str, ...]
    classes: tuple[str, ...]
    downsample: int = Field(default=1, ge=1, le=16)
    window: int = Field(default=256, ge=32, le=4096)
    tta: TTA = "none"  # test-time flips (4x the compute) or all 8 symmetries (8x)
    encoder_weights: str | None = None  # local .safetensors file; nothing is downloaded

    def spec(self) -> ModelSpec:
        """The architecture part (what a checkpoint stores)."""
        return ModelSpec(**self.model_dump(exclude={"encoder_weights"}))


class DataSource(_Section):
    """A set of labelled images.

    ``images`` is a glob, or a template with ``{id}`` filled from ``ids``. Labels come from a
    label raster (``labels``: template with ``{id}`` or ``{stem}``, the image's file stem) or
    from a vector file (``vector``) rasterised from ``class_column`` (class codes or names)
    onto each image's grid; pixels outside every polygon get ``unlabelled`` (255 = ignored).
    """

    images: str
    ids: list[int | str] | None = None
    labels: str | None = None
    vector: str | None = None
    layer: str | None = None
    class_column: str = "class"
    unlabelled: int = Field(default=255, ge=0, le=255)

    @model_validator(mode="after")
    def _one_label_source(self) -> DataSource:
        if (self.labels is None) == (self.vector is None):
            raise ValueError("give exactly one of labels (rasters) or vector (polygons)")
        return self


class DataConfig(_Section):
    """Where training, validation and evaluation data live and how pixels become reflectance.

    ``channels`` maps band common names to 1-based band indexes of the files (default: band
    descriptions, else file order). Integer pixels become ``DN * scale + offset`` (default
    scale 1/255 for 8-bit, 1/10000 for other integers); float pixels are taken as reflectance.
    Without ``validation`` the training images are split by blocks (see ``split``); without
    ``evaluation`` ``agrivision evaluate`` scores the validation part. Instead of ``train``
    and ``validation``, ``chips`` names a directory written by ``agrivision chips``: its
    train chips are trained on, its validation chips validate (and are evaluated on when
    there is no ``evaluation``). ``licence`` states the data's terms of use; it is copied into
    every model trained on them (``model.json``: weights inherit the data's terms).
    """

    root: str = "."
    licence: str | None = None
    channels: dict[str, int] | None = None
    scale: float | None = Field(default=None, gt=0)
    offset: float = 0.0
    chips: str | None = None
    train: DataSource | None = None
    validation: DataSource | None = None
    evaluation: DataSource | None = None

    @model_validator(mode="after")
    def _one_training_source(self) -> DataConfig:
        if self.chips is not None and (self.train is not None or self.validation is not None):
            raise ValueError("give either chips or train (and validation), not both")
        if self.chips is None and self.train is None:
            raise ValueError("give train (labelled images) or chips (a chip directory)")
        return self


class SplitConfig(_Section):
    """Deterministic spatial train/validation split of the training images (model pixels).

    Square blocks are assigned to validation at random (seeded) until ``val_fraction`` of all
    blocks; training chips keep ``buffer`` pixels away from every validation block.
    """

    block: int = Field(default=256, ge=16)
    val_fraction: float = Field(default=0.2, ge=0, lt=1)
    buffer: int = Field(default=8, ge=0)


class ChipsConfig(_Section):
    """Training windows (model pixels): random (optionally class-balanced) or a regular grid."""

    size: int = Field(default=256, ge=32)
    sampling: Literal["random", "grid"] = "random"
    per_epoch: int = Field(default=512, ge=1)
    balance: bool = True


class AugmentConfig(_Section):
    """Random flips, 90-degree rotations, brightness/contrast jitter (in standard deviations)."""

    flips: bool = True
    rotate90: bool = True
    brightness: float = Field(default=0.1, ge=0)
    contrast: float = Field(default=0.1, ge=0, lt=1)


class TrainingConfig(_Section):
    """Optimisation: AdamW with a one-cycle or cosine schedule; class-weighted cross-entropy
    plus ``dice_weight`` x Dice plus ``lovasz_weight`` x Lovasz-softmax (a surrogate of IoU).

    ``precision: bf16`` trains in bf16 autocast: on a CPU with native bf16 (AVX512-BF16,
    AMX) a step takes about 0.6x the CPU time of fp32; ``auto`` is bf16 on a GPU only.

    ``ema``: the decay of an exponential moving average of the weights and BatchNorm
    statistics, updated after every optimiser step (the ``n``-th with the smaller of ``ema``
    and ``(1 + n) / (10 + n)``, so that the early weights fade); when set, the average (not
    the raw weights) is validated each epoch and saved. ``None``: no average.
    """

    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=8, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    dice_weight: float = Field(default=1.0, ge=0)
    lovasz_weight: float = Field(default=0.0, ge=0)
    class_weights: Literal["auto", "none"] | list[float] = "auto"
    patience: int = Field(default=10, ge=1)
    seed: int = 0
    time_limit_min: float | None = Field(default=None, gt=0)  # the schedule ends by then
    threads: int | None = Field(default=None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    ema: float | None = Field(default=None, gt=0, lt=1)


class SegmentConfig(_Section):
    """A whole segmentation run config."""

    model: ModelConfig
    data: DataConfig
    split: SplitConfig = SplitConfig()
    chips: ChipsConfig = ChipsConfig()
    augment: AugmentConfig = AugmentConfig()
    training: TrainingConfig = TrainingConfig()
    output: str = "model"  # the model directory, unless `agrivision train -o` says otherwise

    @model_validator(mode="after")
    def _consistent(self) -> SegmentConfig:
        self.model.spec()  # raises on an inconsistent architecture
        step = 2**self.model.encoder_depth
        if self.chips.size % step:
            raise ValueError(f"chips.size must be a multiple of 2**encoder_depth = {step}")
        weights = self.training.class_weights
        if isinstance(weights, list) and len(weights) != len(self.model.classes):
            raise ValueError("training.class_weights needs one weight per class")
        return self

    def path(self, value: str) -> Path:
        """``value`` resolved against ``data.root`` (itself relative to the config file)."""
        return Path(self.data.root) / value


def load_config(path: str | os.PathLike) -> SegmentConfig:
    """Read a segmentation config; ``data.root`` and ``output`` become absolute (relative to
    the file).

    Raises
    ------
    ConfigError
        Unsafe or invalid YAML, unknown keys, wrong types, inconsistent values.
    """
    p = Path(path)
    data = load_yaml(p)
    cfg = validate(SegmentConfig, data, p)
    root = (p.parent / cfg.data.root).resolve()
    return cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"root": str(root)}),
            "output": str((p.parent / cfg.output).resolve()),
        }
    )

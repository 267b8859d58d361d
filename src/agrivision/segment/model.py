"""The U-Net from a spec: a ``segmentation_models_pytorch.Unet`` whose input channels are bands
chosen by STAC common name and whose outputs are the classes of a class schema.

Nothing is ever downloaded: the encoder starts from random weights unless a local
``.safetensors`` file of encoder weights is given.
"""

from __future__ import annotations

import os
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agrivision.errors import CheckpointError
from agrivision.segment.weights import read_safetensors

# Test-time augmentations (see agrivision.segment.engine.SymmetryTTA).
TTA = Literal["none", "flips", "dihedral"]

# smp's default decoder widths for a depth-5 encoder; shallower encoders take the last entries.
_DECODER = (256, 128, 64, 32, 16)


class ModelSpec(BaseModel):
    """Everything needed to rebuild the network (stored in every checkpoint).

    Attributes
    ----------
    encoder
        Any smp encoder name (``resnet18`` default: fast on CPU, good enough for 2-5 bands).
    encoder_depth
        Encoder stages (3..5); fewer stages are faster, with a smaller receptive field.
    decoder_channels
        Decoder widths, one per stage (default: the last ``encoder_depth`` of 256..16).
    bands
        Input bands by STAC common name, in channel order.
    classes
        Class names by output index: ``classes[i]`` is the name of class code ``i``.
    downsample
        The model sees the imagery averaged over ``downsample x downsample`` pixels (a coarser
        ground sampling distance than the source); predictions are upsampled back.
    window
        Edge of the square windows the model is run on, in model pixels; a multiple of
        ``2 ** encoder_depth``.
    tta
        Test-time augmentation at inference: ``flips`` averages the class probabilities of
        each window and its horizontal, vertical and double flips (4x the compute);
        ``dihedral`` those of all eight symmetries of the square, the flips of the window
        and of its transpose (8x).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Literal["Unet"] = "Unet"
    encoder: str = "resnet18"
    encoder_depth: int = Field(default=5, ge=3, le=5)
    decoder_channels: tuple[int, ...] | None = None
    bands: tuple[str, ...] = Field(min_length=1)
    classes: tuple[str, ...] = Field(min_length=2, max_length=255)
    downsample: int = Field(default=1, ge=1, le=16)
    window: int = Field(default=256, ge=32, le=4096)
    tta: TTA = "none"

    @field_validator("bands", "classes")
    @classmethod
    def _unique(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique, got {list(names)}")
        return names

    @model_validator(mode="after")
    def _shapes(self) -> ModelSpec:
        if self.decoder_channels is not None and len(self.decoder_channels) != self.encoder_depth:
            raise ValueError("decoder_channels needs one width per encoder stage")
        if self.window % (2**self.encoder_depth):
            raise ValueError(
                f"window must be a multiple of 2**encoder_depth = {2**self.encoder_depth}"
            )
        return self

    @property
    def decoder(self) -> tuple[int, ...]:
        """Decoder widths actually used."""
        return self.decoder_channels or _DECODER[-self.encoder_depth :]


def build_model(
    spec: ModelSpec, encoder_weights: str | os.PathLike | None = None
) -> torch.nn.Module:
    """Build the U-Net of ``spec`` (random weights; nothing downloaded).

    Parameters
    ----------
    spec
        The architecture, bands and classes.
    encoder_weights
        Optional local ``.safetensors`` file with weights for the encoder (e.g. converted
        ImageNet weights). A first convolution trained on 3 channels is adapted to the
        number of bands (see :func:`load_encoder_weights`).

    Raises
    ------
    CheckpointError
        Unknown encoder, or encoder weights that cannot be used.
    """
    import segmentation_models_pytorch as smp

    try:
        model = smp.Unet(
            encoder_name=spec.encoder,
            encoder_depth=spec.encoder_depth,
            encoder_weights=None,
            decoder_channels=spec.decoder,
            in_channels=len(spec.bands),
            classes=len(spec.classes),
        )
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"cannot build a U-Net with encoder {spec.encoder!r} ({exc})",
            source="model spec",
            fix="use an encoder name from segmentation_models_pytorch.encoders.get_encoder_names()",
        ) from exc
    if encoder_weights is not None:
        load_encoder_weights(model, encoder_weights)
    return model


def load_encoder_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a local safetensors file into ``model.encoder`` (never unpickles).

    Tensors the encoder does not have (a classifier head, ``fc.*``) are ignored. A first
    convolution with another number of input channels is adapted the way smp does it for
    pretrained weights: channels are repeated cyclically and rescaled by ``3 / bands``.

    Raises
    ------
    CheckpointError
        Unreadable file, or encoder tensors missing or of the wrong shape.
    """
    tensors = read_safetensors(path)
    encoder = model.get_submodule("encoder")
    own = encoder.state_dict()
    # The stem convolution (the first 4-d tensor in every smp encoder) sees the bands.
    in_channels = next(t for t in own.values() if t.ndim == 4).shape[1]
    missing = [k for k in own if k not in tensors]
    if missing:
        raise CheckpointError(
            f"{len(missing)} encoder tensors missing, e.g. {missing[:3]}",
            source=path,
            fix="the file must hold the weights of the encoder named in the spec",
        )
    state = {}
    for name, target in own.items():
        value = tensors[name]
        if value.shape != target.shape and _is_stem(value, target, in_channels):
            reps = -(-target.shape[1] // value.shape[1])
            value = value.repeat(1, reps, 1, 1)[:, : target.shape[1]] * (
                value.shape[1] / target.shape[1]
            )
        if value.shape != target.shape:
            raise CheckpointError(
                f"tensor {name!r} has shape {tuple(value.shape)}, the encoder needs "
                f"{tuple(target.shape)}",
                source=path,
                fix="use weights of the same encoder",
            )
        state[name] = value.to(target.dtype)
    encoder.load_state_dict(state)


def _is_stem(value: torch.Tensor, target: torch.Tensor, in_channels: int) -> bool:
    return (
        value.ndim == 4
        and target.shape[1] == in_channels
        and value.shape[0] == target.shape[0]
        and value.shape[2:] == target.shape[2:]
    )

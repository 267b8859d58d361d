"""The U-Net from a spec and local encoder weights."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from agrivision.errors import CheckpointError
from agrivision.segment.model import ModelSpec, build_model, load_encoder_weights

TINY = dict(encoder="resnet18", encoder_depth=3, decoder_channels=(16, 8, 8), window=64)


def test_channels_and_classes_follow_the_spec():
    spec = ModelSpec(
        **TINY, bands=("blue", "red", "nir", "swir16", "rededge1"), classes=("a", "b", "c")
    )
    model = build_model(spec).eval()
    with torch.inference_mode():
        out = model(torch.zeros(2, 5, 64, 64))
    assert out.shape == (2, 3, 64, 64)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(bands=("red", "red"), classes=("a", "b")),  # duplicate band
        dict(bands=("red",), classes=("a",)),  # one class
        dict(bands=("red",), classes=("a", "b"), window=100),  # not a multiple of 2**depth
        dict(bands=("red",), classes=("a", "b"), decoder_channels=(8, 8)),  # wrong length
        dict(bands=("red",), classes=("a", "b"), colour="x"),  # unknown field
    ],
)
def test_invalid_specs_are_refused(kwargs):
    with pytest.raises(ValidationError):
        ModelSpec(**{**TINY, **kwargs})


def test_unknown_encoder_is_a_checkpoint_error():
    spec = ModelSpec(**{**TINY, "encoder": "no-such-net"}, bands=("red",), classes=("a", "b"))
    with pytest.raises(CheckpointError, match="no-such-net"):
        build_model(spec)


def test_local_encoder_weights_adapt_the_stem_to_the_bands(tmp_path):
    rgb = build_model(ModelSpec(**TINY, bands=("red", "green", "blue"), classes=("a", "b")))
    state = {k: v.contiguous() for k, v in rgb.encoder.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 512)  # a classifier head is ignored
    path = tmp_path / "encoder.safetensors"
    save_file(state, path)
    five = build_model(ModelSpec(**TINY, bands=("b1", "b2", "b3", "b4", "b5"), classes=("a", "b")))
    load_encoder_weights(five, path)
    got = five.encoder.state_dict()
    stem = state["conv1.weight"]
    # channels repeat cyclically (r, g, b, r, g) and are rescaled by 3 / 5 (smp's rule)
    expected = torch.cat([stem, stem[:, :2]], dim=1) * (3 / 5)
    torch.testing.assert_close(got["conv1.weight"], expected)
    torch.testing.assert_close(got["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])


def test_incomplete_encoder_weights_are_refused(tmp_path):
    path = tmp_path / "encoder.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    model = build_model(ModelSpec(**TINY, bands=("red",), classes=("a", "b")))
    with pytest.raises(CheckpointError, match="encoder tensors missing"):
        load_encoder_weights(model, path)

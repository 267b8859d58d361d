"""Checkpoints: safetensors + JSON, round trip, and hostile files that must never load."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from agrivision.errors import CheckpointError
from agrivision.segment.checkpoint import (
    _sha256,
    load_checkpoint,
    read_safetensors,
    save_checkpoint,
)
from agrivision.segment.predict import segment


def _saved(tmp_path, tiny):
    seg = tiny(classes=("a", "b", "c", "d"), seed=3)
    return seg, save_checkpoint(seg.model, seg.meta, tmp_path / "model")


def _set_sha(directory):
    meta = json.loads((directory / "model.json").read_text())
    meta["weights_sha256"] = _sha256(directory / "model.safetensors")
    (directory / "model.json").write_text(json.dumps(meta))


def test_round_trip_gives_identical_predictions(tmp_path, tiny, scene_of):
    seg, directory = _saved(tmp_path, tiny)
    loaded = load_checkpoint(directory)
    assert loaded.meta.spec == seg.meta.spec and loaded.meta.normalisation == seg.meta.normalisation
    assert len(loaded.meta.weights_sha256) == 64
    for name, value in seg.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[name]), name
    scene = scene_of(np.random.default_rng(0).random((2, 90, 70)), ("red", "nir"))
    a = segment(scene, seg, probabilities=True).compute()
    # loaded by path (cached; fp32 as the in-memory model, which runs in PyTorch)
    b = segment(scene, directory, probabilities=True, precision="fp32").compute()
    np.testing.assert_array_equal(a["classes"].values, b["classes"].values)
    np.testing.assert_array_equal(a["probabilities"].values, b["probabilities"].values)


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Payload.marker),))


def test_a_pickle_is_never_unpickled(tmp_path, tiny):
    _, directory = _saved(tmp_path, tiny)
    _Payload.marker = str(tmp_path / "pwned")
    (directory / "model.safetensors").write_bytes(pickle.dumps({"w": _Payload()}))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(directory)
    _set_sha(directory)  # even with a matching hash it is parsed as safetensors only
    with pytest.raises(CheckpointError, match=r"not a valid safetensors file.*never loaded"):
        load_checkpoint(directory)
    assert not (tmp_path / "pwned").exists()


def test_truncated_weights(tmp_path, tiny):
    _, directory = _saved(tmp_path, tiny)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(directory)
    _set_sha(directory)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_checkpoint(directory)


def test_weights_of_the_wrong_shape_name_the_tensor(tmp_path, tiny):
    _, directory = _saved(tmp_path, tiny)
    other = tiny(classes=("a", "b", "c"))  # 3 outputs where model.json says 4
    save_file(
        {k: v.contiguous() for k, v in other.model.state_dict().items()},
        directory / "model.safetensors",
    )
    _set_sha(directory)
    with pytest.raises(
        CheckpointError, match=r"segmentation_head.0.weight.*\(3, 8, 3, 3\).*\(4, 8, 3, 3\)"
    ):
        load_checkpoint(directory)


def test_missing_and_extra_tensors(tmp_path, tiny):
    seg, directory = _saved(tmp_path, tiny)
    state = {k: v.contiguous() for k, v in seg.model.state_dict().items()}
    state.pop("segmentation_head.0.bias")
    state["evil"] = torch.zeros(1)
    save_file(state, directory / "model.safetensors")
    _set_sha(directory)
    with pytest.raises(
        CheckpointError, match=r"missing.*segmentation_head.0.bias.*unexpected.*evil"
    ):
        load_checkpoint(directory)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.update(run_this="os.system('x')"), "'run_this': unknown key"),
        (lambda m: m["spec"].update(encoder_depth=9), "'spec.encoder_depth'"),
        (lambda m: m["normalisation"].update(std=[0.1]), "'normalisation'"),
        (lambda m: m.update(format="pytorch-pickle"), "'format'"),
    ],
)
def test_unexpected_metadata_is_refused(tmp_path, tiny, edit, match):
    _, directory = _saved(tmp_path, tiny)
    meta = json.loads((directory / "model.json").read_text())
    edit(meta)
    (directory / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(directory)


def test_broken_or_missing_metadata(tmp_path, tiny):
    with pytest.raises(CheckpointError, match="metadata not found"):
        load_checkpoint(tmp_path / "nothing")
    _, directory = _saved(tmp_path, tiny)
    (directory / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(directory)
    with pytest.raises(CheckpointError, match="not found"):
        read_safetensors(tmp_path / "none.safetensors")


def test_a_checkpoint_is_loaded_once_per_process(tmp_path, tiny, scene_of, monkeypatch):
    import importlib

    predict = importlib.import_module("agrivision.segment.predict")
    _, directory = _saved(tmp_path, tiny)
    calls = []
    real = predict.load_checkpoint
    monkeypatch.setattr(predict, "load_checkpoint", lambda p: calls.append(p) or real(p))
    scene = scene_of(np.random.default_rng(0).random((2, 150, 150)), ("red", "nir"))
    first = segment(scene, directory, chunks=48).compute()  # 4 x 4 chunks
    again = segment(scene, directory, chunks=64).compute()
    np.testing.assert_array_equal(first["classes"].values, again["classes"].values)
    assert len(calls) == 1
    keys = [k for k in predict.loaded_models() if k[0] == str(directory.resolve())]
    assert len(keys) == 1
    save_checkpoint(tiny(seed=1).model, tiny().meta, directory)  # rewritten: reloaded
    segment(scene, directory).compute()
    assert len(calls) == 2

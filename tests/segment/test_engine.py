"""Inference engines: OpenVINO agrees with PyTorch; which engine runs when; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agrivision.errors import ConfigError
from agrivision.io.scene import open_scene
from agrivision.segment import engine as engines
from agrivision.segment.checkpoint import load_checkpoint, save_checkpoint
from agrivision.segment.config import load_config
from agrivision.segment.engine import SymmetryTTA, build_engine, engine_bf16, resolve_engine
from agrivision.segment.evaluation import evaluate
from agrivision.segment.predict import loaded_models, segment

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def scene(tiles):
    """Two adjacent synthetic tiles as one 128 x 256 px scene: windows overlap and blend."""
    return open_scene([tiles / "tile_004.tif", tiles / "tile_005.tif"]).chunk(96)


def test_auto_runs_checkpoints_with_openvino_and_in_memory_models_with_torch(monkeypatch):
    monkeypatch.setattr(engines, "openvino_available", lambda: True)
    assert resolve_engine("auto", CPU, checkpoint=True) == "openvino"
    assert resolve_engine("auto", CPU, checkpoint=False) == "torch"  # may change between calls
    assert resolve_engine("auto", torch.device("cuda"), checkpoint=True) == "torch"
    assert resolve_engine("torch", CPU, checkpoint=True) == "torch"
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    assert resolve_engine("auto", CPU, checkpoint=True) == "torch"  # the core install


def test_engine_errors_name_the_fix(monkeypatch):
    with pytest.raises(ConfigError, match="unknown engine 'onnx'"):
        resolve_engine("onnx", CPU, checkpoint=True)
    with pytest.raises(ConfigError, match="runs on the CPU"):
        resolve_engine("openvino", torch.device("cuda"), checkpoint=True)
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    with pytest.raises(ConfigError, match="not installed") as info:
        resolve_engine("openvino", CPU, checkpoint=True)
    assert "agrivision[openvino]" in str(info.value)


def test_openvino_classes_equal_torch_fp32(trained, scene):
    pytest.importorskip("openvino")
    model_dir, _ = trained
    ref = segment(scene, model_dir, probabilities=True, engine="torch").compute()
    out = segment(scene, model_dir, probabilities=True, precision="fp32").compute()
    assert any(key[3:5] == ("openvino", False) for key in loaded_models())  # auto: OpenVINO
    classes, expected = out["classes"].values, ref["classes"].values
    assert (classes == expected).mean() >= 0.995
    assert len(np.unique(expected)) >= 3  # a trained model: real classes, not one flat answer
    diff = np.abs(out["probabilities"].values.astype(int) - ref["probabilities"].values)
    assert diff.max() <= 1  # fp32 rounding only: at most one step of 1/254


def test_openvino_runs_bf16_by_default_only_on_cpus_with_native_bf16(monkeypatch):
    pytest.importorskip("openvino")
    for native in (True, False):
        monkeypatch.setattr(engines, "native_bf16", lambda native=native: native)
        assert engine_bf16("openvino", CPU, "auto") is native
        assert engine_bf16("openvino", CPU, "fp32") is False  # --precision fp32 forces it
        assert engine_bf16("openvino", CPU, "bf16") is True
        assert engine_bf16("torch", CPU, "auto") is False  # PyTorch: the fp32 reference
        assert engine_bf16("torch", torch.device("cuda"), "auto") is True
    with pytest.raises(ConfigError, match="precision"):
        engine_bf16("openvino", CPU, "fp16")


def test_native_bf16_is_what_openvino_reports():
    ov = pytest.importorskip("openvino")
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert engines.native_bf16() is ("BF16" in capabilities)


def test_openvino_bf16_is_close_to_fp32(trained, scene):
    pytest.importorskip("openvino")
    model_dir, _ = trained
    fp32 = segment(scene, model_dir, probabilities=True, engine="torch").compute()
    bf16 = segment(scene, model_dir, probabilities=True, precision="bf16").compute()
    assert (bf16["classes"].values == fp32["classes"].values).mean() >= 0.99
    diff = np.abs(bf16["probabilities"].values.astype(int) - fp32["probabilities"].values)
    assert np.median(diff) <= 1 and diff.max() <= 25  # bf16: 8 bits of mantissa


def test_openvino_runs_an_in_memory_model_when_asked(tiny, scene_of, tmp_path):
    pytest.importorskip("openvino")
    seg = tiny()
    data = np.random.default_rng(3).random((2, 100, 90)).astype(np.float32)
    data[:, 10:20, 30:40] = np.nan
    scene = scene_of(data, ("red", "nir"))
    ref = segment(scene, seg, probabilities=True).compute()
    out = segment(scene, seg, probabilities=True, engine="openvino").compute()
    np.testing.assert_array_equal(out["classes"].values == 255, ref["classes"].values == 255)
    assert (out["classes"].values == ref["classes"].values).mean() >= 0.995
    # a reloaded checkpoint of the same weights gives the same answer through the cache
    save_checkpoint(seg.model, seg.meta, tmp_path / "m")
    again = segment(scene, load_checkpoint(tmp_path / "m"), engine="openvino").compute()
    np.testing.assert_array_equal(again["classes"].values, out["classes"].values)


def test_openvino_bf16_costs_at_most_half_a_miou_point(trained):
    pytest.importorskip("openvino")
    model_dir, cfg_path = trained
    config = load_config(cfg_path)
    fp32 = evaluate(model_dir, config, device="cpu", engine="torch")
    bf16 = evaluate(model_dir, config, device="cpu", engine="openvino", precision="bf16")
    assert fp32["pixels"] == bf16["pixels"] == 2 * 128 * 128
    assert fp32["miou"] > 0.2  # trained for two epochs: real answers, not one flat class
    assert abs(bf16["miou"] - fp32["miou"]) <= 0.005


def test_tta_averages_the_flipped_and_transposed_probabilities():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)  # no symmetry: each flip or transpose differs

    def engine(batch):
        return conv(batch)

    def rot90(x, k):  # rotations by hand (numpy): with flips they make the 8 symmetries
        return torch.from_numpy(np.rot90(x.numpy(), k, axes=(-2, -1)).copy())

    x = torch.rand(2, 2, 8, 12)  # not square: the transposes must be undone
    with torch.no_grad():
        flips = torch.softmax(SymmetryTTA(engine)(x), dim=1)
        dihedral = torch.softmax(SymmetryTTA(engine, transpose=True)(x), dim=1)
        plain = torch.softmax(conv(x), dim=1)
        by_hand = [
            torch.softmax(conv(x.flip(d) if d else x), dim=1).flip(d) if d
            else plain
            for d in ((), (-1,), (-2,), (-2, -1))
        ]  # fmt: skip
        symmetries = [  # each rotation of the image and of its mirror image, undone
            rot90(torch.softmax(conv(rot90(x, k)), dim=1), -k) for k in range(4)
        ] + [rot90(torch.softmax(conv(rot90(x.flip(-1), k)), dim=1), -k).flip(-1) for k in range(4)]
    torch.testing.assert_close(flips, sum(by_hand) / 4)
    torch.testing.assert_close(dihedral, sum(symmetries) / 8)
    for tta, expected in (("flips", flips), ("dihedral", dihedral), ("none", plain)):
        built = build_engine(conv, "torch", device=torch.device("cpu"), bands=2, window=8,
                             bf16=False, tta=tta)  # fmt: skip
        with torch.no_grad():
            torch.testing.assert_close(torch.softmax(built(x), dim=1), expected)
    assert (flips - plain).abs().max() > 1e-3 and (dihedral - flips).abs().max() > 1e-3


def test_a_model_with_tta_segments_with_flips(tiny, scene_of, tmp_path):
    seg = tiny(("red", "nir"), ("a", "b", "c"))
    data = np.random.default_rng(0).random((2, 64, 64))  # one 64-px window: no blending
    flips = seg.meta.model_copy(update={"spec": seg.spec.model_copy(update={"tta": "flips"})})
    save_checkpoint(seg.model, flips, tmp_path / "m")
    tta = segment(
        scene_of(data, ("red", "nir")), tmp_path / "m", probabilities=True, precision="fp32"
    )
    # by hand: the plain model on each flipped image, flipped back, averaged
    by_hand = np.mean(
        [
            np.flip(segment(scene_of(np.flip(data, axes), ("red", "nir")), seg,
                            probabilities=True)["probabilities"].values, axes)
            for axes in ((), (2,), (1,), (1, 2))
        ],
        axis=0,
    ) / 254  # fmt: skip
    probs = tta["probabilities"].values / 254
    np.testing.assert_allclose(probs, by_hand, atol=1.01 / 254)
    plain = segment(scene_of(data, ("red", "nir")), seg, probabilities=True)
    assert np.abs(probs - plain["probabilities"].values / 254).max() > 0.01

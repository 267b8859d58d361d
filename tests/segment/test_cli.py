"""``train``, ``evaluate`` and ``segment`` commands (through click's test runner)."""

from __future__ import annotations

import json
import re

import numpy as np
import rasterio
from click.testing import CliRunner
from PIL import Image

from agrivision.cli.segment import evaluate, segment, train
from agrivision.errors import BandNotFoundError, CheckpointError
from agrivision.io.scene import open_scene
from agrivision.segment import evaluate as evaluate_api
from agrivision.segment import load_checkpoint, load_config
from agrivision.segment import segment as segment_api


def test_train_evaluate_segment(tmp_path, tiles, config_file):
    cfg = config_file(tmp_path / "c.yaml", tiles, **{"training.epochs": 1})
    runner = CliRunner()
    out = runner.invoke(train, [str(cfg), "-o", str(tmp_path / "m"), "--quiet"])
    assert out.exit_code == 0, out.output
    assert "best epoch 1 of 1" in out.output and (tmp_path / "m" / "model.safetensors").exists()

    out = runner.invoke(
        evaluate, ["--model", str(tmp_path / "m"), str(cfg), "--json", str(tmp_path / "e.json")]
    )
    assert out.exit_code == 0, out.output
    scores = evaluate_api(tmp_path / "m", load_config(cfg))
    assert json.loads((tmp_path / "e.json").read_text())["confusion"] == scores["confusion"]
    assert re.search(rf"mIoU\s+{scores['miou']:.4f}", out.output)
    assert "confusion (rows: truth, columns: predicted)" in out.output
    assert "split: evaluation (2 images, 32768 pixels)" in out.output

    image = tiles / "tile_004.tif"
    args = [str(image), "--model", str(tmp_path / "m"), "-o", str(tmp_path / "cls.tif")]
    out = runner.invoke(
        segment, [*args, "--probabilities", str(tmp_path / "p.tif"), "--device", "cpu"]
    )
    assert out.exit_code == 0, out.output
    expected = segment_api(open_scene(image), tmp_path / "m", probabilities=True).compute()
    with rasterio.open(tmp_path / "cls.tif") as src, rasterio.open(image) as ref:
        np.testing.assert_array_equal(src.read(1), expected["classes"].values)
        assert src.crs == ref.crs and src.transform == ref.transform and src.nodata == 255
    with rasterio.open(tmp_path / "p.tif") as src:
        np.testing.assert_array_equal(src.read(), expected["probabilities"].values)
        assert src.descriptions[1] == "healthy"


def test_evaluate_writes_the_model_card(tmp_path, tiles, config_file):
    licence = "synthetic tiles: CC0"
    cfg = config_file(tmp_path / "c.yaml", tiles, **{"training.epochs": 1, "data.licence": licence})
    runner = CliRunner()
    out = runner.invoke(train, [str(cfg), "-o", str(tmp_path / "m"), "--quiet"])
    assert out.exit_code == 0, out.output
    assert f"data licence (the weights inherit it): {licence}" in out.output
    card = tmp_path / "m" / "model.json"
    meta = json.loads(card.read_text())
    assert meta["data_licence"] == licence and meta["evaluation"] is None
    sha = meta["weights_sha256"]

    out = runner.invoke(evaluate, ["--model", str(tmp_path / "m"), str(cfg), "--no-record"])
    assert out.exit_code == 0, out.output
    assert f"training data licence: {licence}" in out.output
    assert json.loads(card.read_text())["evaluation"] is None

    out = runner.invoke(evaluate, ["--model", str(tmp_path / "m"), str(cfg)])
    assert out.exit_code == 0, out.output
    scores = evaluate_api(tmp_path / "m", load_config(cfg))
    recorded = load_checkpoint(tmp_path / "m").meta  # still loads: the weights are unchanged
    assert recorded.weights_sha256 == sha
    ev = recorded.evaluation
    assert ev.split == "evaluation" and ev.images == ["tile_004.tif", "tile_005.tif"]
    assert ev.miou == scores["miou"] and ev.iou == scores["iou"] and ev.f1 == scores["f1"]
    assert ev.confusion == scores["confusion"] and ev.pixels == 32768 and ev.tta == "none"
    assert len(ev.data_fingerprint) == 64

    # test-time flips: scored as the model with tta set would be, and recorded as such
    out = runner.invoke(evaluate, ["--model", str(tmp_path / "m"), str(cfg), "--tta", "flips"])
    assert out.exit_code == 0, out.output
    flipped = evaluate_api(tmp_path / "m", load_config(cfg), tta="flips")
    assert load_checkpoint(tmp_path / "m").meta.evaluation.tta == "flips"
    assert load_checkpoint(tmp_path / "m").meta.evaluation.confusion == flipped["confusion"]
    assert flipped["confusion"] != scores["confusion"]


def test_segment_a_plain_image(tmp_path, tiny):
    from agrivision.segment.checkpoint import save_checkpoint

    seg = tiny()
    save_checkpoint(seg.model, seg.meta, tmp_path / "m")
    rgb = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    args = [
        str(tmp_path / "img.png"),
        "--model",
        str(tmp_path / "m"),
        "-o",
        str(tmp_path / "c.tif"),
    ]
    out = CliRunner().invoke(segment, [*args, "--channels", "red=1,nir=2"])
    assert out.exit_code == 0, out.output
    with rasterio.open(tmp_path / "c.tif") as src:
        assert src.shape == (70, 90) and src.crs is None
        auto = src.read(1)
    args[-1] = str(tmp_path / "t.tif")
    out = CliRunner().invoke(segment, [*args, "--channels", "red=1,nir=2", "--engine", "torch"])
    assert out.exit_code == 0, out.output
    with rasterio.open(tmp_path / "t.tif") as src:
        assert (src.read(1) == auto).mean() >= 0.995  # OpenVINO (when installed) = PyTorch


def test_user_errors(tmp_path, tiles, trained):
    model_dir, cfg = trained
    runner = CliRunner()
    out = runner.invoke(evaluate, ["--model", str(tmp_path / "none"), str(cfg)])
    assert isinstance(out.exception, CheckpointError)
    out = runner.invoke(segment, [str(tiles / "tile_000_label.tif"), "--model", str(model_dir),
                                  "-o", str(tmp_path / "c.tif")])  # fmt: skip
    assert isinstance(out.exception, BandNotFoundError)
    assert runner.invoke(train, []).exit_code == 2  # usage: CONFIG is missing

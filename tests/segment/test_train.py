"""Training: learning, reproducibility, logs and what the checkpoint records."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import load_file

from agrivision.errors import ConfigError
from agrivision.segment.checkpoint import load_checkpoint
from agrivision.segment.config import load_config
from agrivision.segment.training import train


def _two_class_tiles(root, n=4, size=64, seed=0):
    """Vegetation (nir >> red) blobs on soil: learnable from each pixel's spectrum."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    for i in range(n):
        blob = ndimage.gaussian_filter(rng.standard_normal((size, size)), 4)
        label = (blob > 0).astype(np.uint8)
        red = np.where(label == 1, 0.05, 0.2) + 0.02 * rng.standard_normal((size, size))
        nir = np.where(label == 1, 0.5, 0.25) + 0.02 * rng.standard_normal((size, size))
        profile = dict(driver="GTiff", width=size, height=size, crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(0, 0, 10, 10))  # fmt: skip
        with rasterio.open(root / f"t{i}.tif", "w", count=2, dtype="float32", **profile) as dst:
            dst.write(np.stack([red, nir]).astype(np.float32))
            dst.descriptions = ("red", "nir")
        with rasterio.open(root / f"t{i}_label.tif", "w", count=1, dtype="uint8", **profile) as dst:
            dst.write(label[None])


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    root = tmp_path_factory.mktemp("easy")
    _two_class_tiles(root)
    return root


def _easy_config(tmp_path, easy, config_file, **overrides):
    settings = {
        "model.bands": ["red", "nir"],
        "model.classes": ["soil", "plant"],
        "data.train": {"images": "t[0-2].tif", "labels": "{stem}_label.tif"},
        "data.validation": {"images": "t3.tif", "labels": "{stem}_label.tif"},
        "data.evaluation": None,
        "training.epochs": 4,
        "training.batch_size": 4,
        "chips.per_epoch": 24,
        **overrides,
    }
    return load_config(config_file(tmp_path / "c.yaml", easy, **settings))


def test_a_trivial_task_is_learnt_and_logged(tmp_path, easy, config_file):
    cfg = _easy_config(tmp_path, easy, config_file)
    result = train(cfg, tmp_path / "m", progress=False)
    assert result.metrics["miou"] > 0.9
    log = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    with open(tmp_path / "m" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {"iou_soil", "f1_plant", "val_miou", "lr"} <= set(rows[0])
    assert float(rows[result.best_epoch - 1]["val_miou"]) == pytest.approx(result.metrics["miou"])
    meta = load_checkpoint(tmp_path / "m").meta
    assert meta.metrics["epoch"] == result.best_epoch
    assert len(meta.data_fingerprint) == 64
    # normalisation: mean/std of the training images' pixels, computed independently
    pixels = []
    for i in range(3):
        with rasterio.open(easy / f"t{i}.tif") as src:
            pixels.append(src.read().reshape(2, -1).astype(np.float64))
    pixels = np.concatenate(pixels, axis=1)
    np.testing.assert_allclose(meta.normalisation.mean, pixels.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(meta.normalisation.std, pixels.std(axis=1), rtol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [{}, {"training.precision": "bf16", "training.lovasz_weight": 0.5}],
    ids=["fp32", "bf16-lovasz"],
)
def test_training_is_reproducible_with_a_seed(tmp_path, easy, config_file, settings):
    cfg = _easy_config(
        tmp_path, easy, config_file, **{"training.epochs": 1, "chips.per_epoch": 8, **settings}
    )
    weights = []
    for name in ("a", "b"):
        train(cfg, tmp_path / name, progress=False)
        weights.append(load_file(tmp_path / name / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_block_split_validation_and_grid_chips(trained):
    model_dir, cfg_path = trained
    log = json.loads((model_dir / "metrics.json").read_text())
    assert len(log) == 2 and all(0 <= row["val_miou"] <= 1 for row in log)
    cfg = load_config(cfg_path)
    result = train(
        cfg.model_copy(update={"chips": cfg.chips.model_copy(update={"sampling": "grid"})}),
        model_dir.parent / "grid",
        progress=False,
    )
    assert result.epochs_run == 2


def test_unknown_config_keys_name_the_key(tmp_path, tiles, config_file):
    path = config_file(tmp_path / "c.yaml", tiles, **{"training.learning_rate": 0.1})
    with pytest.raises(
        ConfigError, match=r"unknown key 'training\.learning_rate'.*allowed: epochs"
    ):
        load_config(path)
    path = config_file(tmp_path / "c.yaml", tiles, **{"chips.size": 60})
    with pytest.raises(ConfigError, match="multiple of 2"):
        load_config(path)


def test_schedules_follow_steps_or_the_time_limit(monkeypatch):
    import importlib

    train_module = importlib.import_module("agrivision.segment.training")  # not the function

    def lrs(kind, total, limit=None, clock=None):
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        if clock is not None:
            monkeypatch.setattr(train_module.time, "monotonic", lambda: clock[0])
        sched = train_module._scheduler(opt, kind, total, limit, 0.0)
        out = [opt.param_groups[0]["lr"]]
        for _ in range(total):
            if clock is not None:
                clock[0] += 1.0
            opt.step()
            sched.step()
            out.append(opt.param_groups[0]["lr"])
        return np.array(out)

    one = lrs("onecycle", 100)
    assert one[0] == pytest.approx(0.04) and one[10] == pytest.approx(1.0)
    assert one[55] == pytest.approx(0.5) and one[100] == pytest.approx(0.0, abs=1e-12)
    cos = lrs("cosine", 100)
    assert cos[0] == 1.0 and cos[50] == pytest.approx(0.5) and cos[100] == pytest.approx(0.0)
    # 1 s per step and a 20 s limit: the schedule ends after 20 of 100 planned steps
    timed = lrs("onecycle", 100, limit=20.0, clock=[0.0])
    assert timed[2] == pytest.approx(1.0) and timed[20] == pytest.approx(0.0, abs=1e-12)
    # 10 s of reading data before the first step: the 10 s left are the schedule's time
    late = lrs("onecycle", 100, limit=20.0, clock=[10.0])
    assert late[1] == pytest.approx(1.0) and late[10] == pytest.approx(0.0, abs=1e-12)
    # steps ahead of the clock: the schedule is that of the steps, whenever it started
    ahead = lrs("onecycle", 100, limit=1000.0, clock=[30.0])
    np.testing.assert_array_equal(ahead, one)
    assert train_module._scheduler(None, "constant", 10, None, 0.0) is None


def test_chips_and_train_are_exclusive(tmp_path, tiles, config_file):
    path = config_file(tmp_path / "c.yaml", tiles, **{"data.chips": "somewhere"})
    with pytest.raises(ConfigError, match="either chips or train"):
        load_config(path)
    path = config_file(tmp_path / "c.yaml", tiles, **{"data.train": None})
    with pytest.raises(ConfigError, match="give train"):
        load_config(path)


def test_the_loss_adds_dice_and_lovasz_where_weighted():
    import segmentation_models_pytorch as smp

    from agrivision.segment.config import TrainingConfig
    from agrivision.segment.training import _loss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 16, 16)
    y = torch.randint(0, 3, (2, 16, 16))
    y[0, :4] = 255  # ignored
    weights = [0.5, 1.0, 2.0]
    ce = torch.nn.functional.cross_entropy(
        logits, y, weight=torch.tensor(weights), ignore_index=255
    )
    dice = smp.losses.DiceLoss("multiclass", ignore_index=255)(logits, y)
    lovasz = smp.losses.LovaszLoss("multiclass", ignore_index=255)(logits, y)
    for dice_w, lovasz_w in ((0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 2.0)):
        cfg = TrainingConfig(dice_weight=dice_w, lovasz_weight=lovasz_w)
        got = _loss(cfg, weights, torch.device("cpu"))(logits, y)
        torch.testing.assert_close(got, ce + dice_w * dice + lovasz_w * lovasz)


def test_the_weight_average_follows_the_ema_formula():
    from agrivision.segment.training import _ema

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    first = {k: v.clone() for k, v in model.state_dict().items()}
    ema = _ema(model, 0.9)
    ema.update_parameters(model)  # the first update copies
    expected = first
    for n in range(1, 100):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        model.train()(torch.randn(5, 3))  # moves the BatchNorm statistics and batch count
        ema.update_parameters(model)
        d = min(0.9, (1 + n) / (10 + n))  # the warm-up: 0.2, 0.25, ... up to 0.9 from n = 80
        now = model.state_dict()
        expected = {k: d * expected[k] + (1 - d) * v for k, v in now.items()}
    averaged = ema.module.state_dict()
    assert averaged.keys() == now.keys()
    for k, v in now.items():
        if torch.is_floating_point(v):
            torch.testing.assert_close(averaged[k], expected[k])
        else:  # the batch count is copied
            assert averaged[k] == v == 99, k
    assert not torch.equal(averaged["1.running_mean"], now["1.running_mean"])
    assert _ema(model, None) is None


def test_training_with_ema_validates_and_saves_the_average(tmp_path, easy, config_file):
    from agrivision.segment.prepare import normalise
    from agrivision.segment.training import validate

    settings = {"training.epochs": 2, "chips.per_epoch": 8}
    weights = {}
    for name, decay in (("raw", None), ("tiny", 1e-9), ("ema", 0.9)):
        cfg = _easy_config(tmp_path, easy, config_file, **settings, **{"training.ema": decay})
        result = train(cfg, tmp_path / name, progress=False)
        weights[name] = load_file(tmp_path / name / "model.safetensors")
    floats = [k for k, v in weights["raw"].items() if torch.is_floating_point(v)]
    # a vanishing decay averages nothing away: the raw weights
    for k in floats:
        torch.testing.assert_close(weights["tiny"][k], weights["raw"][k])
    assert any(not torch.allclose(weights["ema"][k], weights["raw"][k]) for k in floats)
    # the saved weights are those validated: reloaded, they score the best epoch's mIoU
    seg = load_checkpoint(tmp_path / "ema")
    with rasterio.open(easy / "t3.tif") as src:
        image = torch.from_numpy(src.read())
    with rasterio.open(easy / "t3_label.tif") as src:
        label = src.read(1)
    norm = seg.meta.normalisation
    scores = validate(
        seg.model, [normalise(image, norm.mean, norm.std)], [label], [[(0, 64, 0, 64)]], 2,
        ("soil", "plant"), torch.device("cpu"),
    )  # fmt: skip
    assert scores["miou"] == pytest.approx(result.metrics["miou"], abs=1e-9)

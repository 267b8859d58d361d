"""``agrivision report --model``: health classes from a U-Net checkpoint instead of the rules."""

from __future__ import annotations

import hashlib
import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize

from agrivision.cli import main
from agrivision.errors import CheckpointError, ConfigError
from agrivision.report.config import load_report_config
from agrivision.segment import predict
from agrivision.segment.model_classes import (
    class_mapping,
    classes_provenance,
    model_labels,
    model_outputs,
    run_once,
)

pytest.importorskip("segmentation_models_pytorch")

# Random weights are enough: the test compares the report with the segmenter run directly.
CLASSES = ("soil", "crop", "weed", "disease")
SCHEMA_CODE = {"soil": 4, "crop": 1, "weed": 4, "disease": 3}  # by the built-in synonyms


def _checkpoint(path, *, bands=("red", "nir"), classes=CLASSES):
    import torch

    from agrivision.segment.checkpoint import CheckpointMeta, Normalisation, save_checkpoint
    from agrivision.segment.model import ModelSpec, build_model

    torch.manual_seed(3)
    spec = ModelSpec(encoder="tu-mobilenetv3_small_050", encoder_depth=3,
                     decoder_channels=(16, 8, 8), bands=bands, classes=classes, window=64)  # fmt: skip
    norm = Normalisation(mean=(0.1,) * len(bands), std=(0.1,) * len(bands))
    return save_checkpoint(build_model(spec).eval(), CheckpointMeta(spec=spec, normalisation=norm),
                           path)  # fmt: skip


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A 160 x 160 synthetic two-date scene (64-pixel chunks), a checkpoint and its report."""
    from agrivision.synthetic import write_synthetic

    root = tmp_path_factory.mktemp("model_report")
    files = write_synthetic(root / "scene", seed=5, shape=(160, 160),
                            dates=["2024-06-01", "2024-06-21"], chunks=64)  # fmt: skip
    config = root / "config.yaml"
    config.write_text("scene:\n  chunks: 64\noutput:\n  max_cards: 2\n")
    model = _checkpoint(root / "model")
    out = root / "report"
    calls = []
    with pytest.MonkeyPatch.context() as mp:  # count the model's chunk runs
        original = predict._predict_block

        def counting(*args, block_info=None, **kwargs):  # dask passes block_info by name
            calls.append(block_info[None]["chunk-location"])
            return original(*args, block_info=block_info, **kwargs)

        mp.setattr(predict, "_predict_block", counting)
        code = main(["report", str(files.items), "--fields", str(files.fields), "--config",
                     str(config), "--model", str(model), "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return {"files": files, "model": model, "out": out, "config": config, "calls": len(calls)}


def _direct(files, model, date: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The segmenter run by hand on one date: (classes mapped to the schema and cut to the
    fields, raw predictions, inside-a-field mask)."""
    from agrivision.io.scene import open_scene
    from agrivision.masks import MaskConfig
    from agrivision.segment import segment

    scene = open_scene([str(files.items)], chunks=64, mask=MaskConfig()).isel(time=date)
    predicted = segment(scene, model, precision="fp32")["classes"].values  # the report runs fp32
    lut = np.zeros(256, np.uint8)
    lut[: len(CLASSES)] = [SCHEMA_CODE[c] for c in CLASSES]
    fields = gpd.read_file(files.fields).to_crs(scene.rio.crs)
    inside = rasterize(fields.geometry, out_shape=predicted.shape,
                       transform=scene.rio.transform(), fill=0, default_value=1)  # fmt: skip
    return np.where(inside == 1, lut[predicted], 0), predicted, inside


def test_classes_come_from_the_model_within_the_fields(case):
    expected, predicted, inside = _direct(case["files"], case["model"], -1)
    with rasterio.open(case["out"] / "classes.tif") as src:
        got = src.read(1)
        assert json.loads(src.tags()["CLASS_NAMES"])["4"] == "bare_soil"
    np.testing.assert_array_equal(got, expected)
    # Not vacuous: several classes inside fields, predictions outside them that were dropped,
    # nodata (masked clouds) that became background, and the last date, not the first.
    assert len(set(np.unique(expected)) - {0}) >= 2
    assert ((inside == 0) & (predicted != 255)).any()
    first, _, _ = _direct(case["files"], case["model"], 0)
    assert (first != expected).any()


def test_the_model_runs_once_per_chunk(case):
    """Zonal statistics, problem polygons and the COG all read the classes: one model run."""
    from agrivision.io.scene import open_scene
    from agrivision.segment import segment

    scene = open_scene([str(case["files"].items)], chunks=64).isel(time=-1)
    chunks = segment(scene, case["model"])["classes"].data.npartitions
    assert case["calls"] == chunks
    lazy = segment(scene, case["model"])["classes"]
    assert run_once(lazy, max_bytes=lazy.nbytes - 1) is lazy  # too large: left lazy


def test_model_outputs_give_classes_and_probabilities_of_one_run(case, monkeypatch):
    """``model_outputs(probabilities=True)``: the segmenter's classes and uint8 probabilities
    inside the fields (255 outside), both from one model run per chunk."""
    from agrivision.io.scene import open_scene
    from agrivision.masks import MaskConfig
    from agrivision.segment import segment

    scene = open_scene([str(case["files"].items)], chunks=64, mask=MaskConfig()).isel(time=-1)
    fields = gpd.read_file(case["files"].fields)
    # the report runs the loaded checkpoint in PyTorch (fp32 on a CPU)
    direct = segment(scene, case["model"], engine="torch", probabilities=True)
    _, _, inside = _direct(case["files"], case["model"], -1)
    calls = []
    original = predict._predict_block

    def counting(*args, block_info=None, **kwargs):
        calls.append(1)
        return original(*args, block_info=block_info, **kwargs)

    monkeypatch.setattr(predict, "_predict_block", counting)
    out = run_once(model_outputs(scene, case["model"], fields, probabilities=True))
    assert len(calls) == direct["classes"].data.npartitions  # classes and probabilities: one run
    probs = out["model_probability"]
    assert probs.dims == ("class", "y", "x") and list(probs["class"].values) == list(CLASSES)
    assert probs.rio.nodata == 255 and probs.attrs["probability_scale"] == 1 / 254
    expected = np.where(inside[None] == 1, direct["probabilities"].values, 255)
    np.testing.assert_array_equal(probs.values, expected)
    np.testing.assert_array_equal(
        out["model_class"].values, np.where(inside == 1, direct["classes"].values, 255)
    )
    valid = out["model_class"].values != 255  # inside a field and not masked
    np.testing.assert_array_equal((probs.values < 255).all(axis=0), valid)
    assert (inside == 0).any() and valid.any()


def test_summary_and_html_name_the_checkpoint(case):
    summary = json.loads((case["out"] / "summary.json").read_text())
    weights = (case["model"] / "model.safetensors").read_bytes()
    assert summary["classes"] == {
        "method": "model",
        "checkpoint": str(case["model"].resolve()),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "classes": {"soil": "bare_soil", "crop": "healthy", "weed": "bare_soil",
                    "disease": "anomaly"},
    }  # fmt: skip
    assert summary["config"]["model"] == str(case["model"])
    # no GDAL noise from chunk-wise reprojection (the small crop groups are said, rightly)
    assert [w for w in summary["warnings"] if not w.startswith("peer comparisons")] == []
    assert hashlib.sha256(weights).hexdigest() in (case["out"] / "report.html").read_text()


def test_the_models_names_label_the_report_classes(case):
    """A trained model may say "disease" or "weed"; the spectral rules only "anomaly"."""
    page = (case["out"] / "report.html").read_text()
    for label in ("<td>crop</td>", "<td>disease</td>", "<td>soil / weed</td>"):
        assert label in page  # the cards' class-area tables
    assert "scout here" not in page and "bare soil" not in page
    problems = gpd.read_file(case["out"] / "problems.geojson")
    names = {3: "disease", 2: "stressed"}  # stressed has no model class: keeps its label
    assert len(problems) and all(
        names[c] == n for c, n in zip(problems["class"], problems["class_name"], strict=True)
    )


def test_model_labels_only_where_the_model_names_differ():
    mapping = {"soil": "bare_soil", "crop": "healthy", "weed": "bare_soil", "stressed": "stressed",
               "nodata": "background", "Pest-Damage": "anomaly"}  # fmt: skip
    assert model_labels(mapping) == {4: "soil / weed", 1: "crop", 3: "Pest-Damage"}


def test_a_scene_without_the_model_bands_is_a_one_line_error(case, tmp_path, capsys):
    model = _checkpoint(tmp_path / "thermal", bands=("red", "lwir11"))
    out = tmp_path / "report"
    files = case["files"]
    code = main(["report", str(files.items), "--fields", str(files.fields), "--config",
                 str(case["config"]), "--model", str(model), "-o", str(out), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "lwir11" in err and str(model.resolve()) in err
    assert not out.exists() and not list(tmp_path.glob(".report.partial-*"))


def test_an_unmappable_class_names_the_checkpoint_and_the_fix(case, tmp_path, capsys):
    model = _checkpoint(tmp_path / "odd", classes=("crop", "tractor"))
    files = case["files"]
    args = ["report", str(files.items), "--fields", str(files.fields), "--model", str(model),
            "-o", str(tmp_path / "report"), "--quiet"]  # fmt: skip
    assert main([*args, "--config", str(case["config"])]) == 2
    err = capsys.readouterr().err
    assert "'tractor'" in err and str(model.resolve()) in err and "model_classes" in err
    config = tmp_path / "mapped.yaml"
    config.write_text(case["config"].read_text() + "model_classes:\n  tractor: background\n")
    assert main([*args, "--config", str(config)]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["classes"]["classes"] == {"crop": "healthy", "tractor": "background"}


def test_rule_based_classes_name_their_rules():
    import xarray as xr

    from agrivision.health import HealthRules, classify

    ndvi = xr.DataArray(np.linspace(0.1, 0.9, 64, dtype=np.float32).reshape(8, 8),
                        dims=("y", "x"), coords={"y": 95.0 - 10 * np.arange(8),
                                                 "x": 5.0 + 10 * np.arange(8)})  # fmt: skip
    classes = classify(xr.Dataset({"NDVI": ndvi.rio.write_crs("EPSG:32633")}))
    rules = {**HealthRules().model_dump(), "min_pixels": 30}  # the support the z-scores had
    assert classes_provenance(classes) == {"method": "rules", "rules": rules}


@pytest.mark.parametrize(
    ("classes", "mapping", "expected"),
    [
        (("soil", "crop", "weed"), None, ("bare_soil", "healthy", "bare_soil")),  # CWFID
        (("background", "healthy", "stressed", "anomaly", "bare_soil"), None,
         ("background", "healthy", "stressed", "anomaly", "bare_soil")),
        (("Bare Soil", "Pest-Damage", "NoData"), None, ("bare_soil", "anomaly", "background")),
        (("soil", "crop", "weed"), {"weed": "anomaly"}, ("bare_soil", "healthy", "anomaly")),
    ],
)  # fmt: skip
def test_class_mapping(classes, mapping, expected):
    assert class_mapping(classes, mapping) == dict(zip(classes, expected, strict=True))


def test_class_mapping_errors():
    with pytest.raises(CheckpointError, match=r"ckpt: .*\['lodged'\].*model_classes: \{lodged: "):
        class_mapping(("crop", "lodged"), source="ckpt")
    with pytest.raises(ConfigError, match=r"model_classes\.crop: 'weeds' is not a report class"):
        class_mapping(("crop",), {"crop": "weeds"})
    with pytest.raises(ConfigError, match=r"model_classes names \['tractor'\]"):
        class_mapping(("crop",), {"tractor": "background"})


def test_config_checks_model_classes_when_loaded(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model_classes:\n  lodged: flattened\n")
    with pytest.raises(
        ConfigError, match=r"c\.yaml: model_classes\.lodged: 'flattened'.*allowed: "
    ):
        load_report_config(config)

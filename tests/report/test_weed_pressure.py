"""Weed pressure from a drone orthomosaic: ``agrivision report --model --grid-cell``.

A tiny U-Net is trained in seconds on a synthetic mosaic of soil, crop rows and weeds; the
report on another mosaic (two fields, known weed density per square metre) must give per-field
and per-cell class shares equal to those counted by hand on the model's own prediction, and
within 5 points of the label truth; weed patches are a polygon layer; report.html draws both.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import yaml
from affine import Affine
from report.test_browser import report_page, shape_box
from report.weed_mosaics import CLASSES, cell_truth, weed_scene, write_labels, write_mosaic
from shapely.geometry import box
from shapely.ops import polylabel

from agrivision.cli import main
from agrivision.report.palette import SHARE_RAMP, ramp_rgb
from agrivision.report.webmap import share_top

pytest.importorskip("segmentation_models_pytorch")

GSD = 0.01  # m: a 1 cm drone mosaic
ORIGIN = (500000.0, 5800000.0)  # on the 1 m cell grid: cells fall on pixel edges
CELL = 1.0  # m
MIN_PATCH_M2 = 0.003
# Weed discs per square metre (block of 100 x 100 pixels) of the report's mosaic: 4 x 6 m.
DENSITY = np.array([[0, 5, 30, 60, 10, 0], [20, 0, 45, 0, 5, 25], [60, 15, 0, 30, 0, 40],
                    [5, 35, 10, 0, 50, 15]])  # fmt: skip


def _transform(x0: float = ORIGIN[0]) -> Affine:
    return Affine(GSD, 0, x0, 0, -GSD, ORIGIN[1])


@pytest.fixture(scope="module")
def weed_model(tmp_path_factory):
    """A tiny U-Net trained on a 3 x 3 m synthetic mosaic (seconds on a CPU)."""
    from agrivision.segment import load_config, train

    root = tmp_path_factory.mktemp("weed_model")
    rng = np.random.default_rng(1)
    image, label = weed_scene((384, 384), rng.integers(0, 40, (3, 3)), rng)
    write_mosaic(root / "train.tif", image, _transform(ORIGIN[0] - 10))
    write_labels(root / "train_label.tif", label, _transform(ORIGIN[0] - 10))
    config = {
        "model": {"encoder": "tu-mobilenetv3_small_050", "encoder_depth": 3,
                  "decoder_channels": [16, 8, 8], "bands": ["red", "nir"],
                  "classes": list(CLASSES), "window": 128},
        "data": {"root": str(root), "licence": "synthetic, CC0",
                 "train": {"images": "train.tif", "labels": "{stem}_label.tif"}},
        "split": {"block": 64, "val_fraction": 0.15, "buffer": 4},
        "chips": {"size": 64, "per_epoch": 64},
        "training": {"epochs": 12, "batch_size": 8, "lr": 0.01, "device": "cpu", "threads": 1},
    }  # fmt: skip
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    train(load_config(root / "config.yaml"), root / "model", progress=False)
    return root / "model"


@pytest.fixture(scope="module")
def case(tmp_path_factory, weed_model):
    """The report of a 4 x 6 m mosaic over two fields (3 x 4 m each) with 1 m cells."""
    root = tmp_path_factory.mktemp("weed_report")
    rng = np.random.default_rng(7)
    image, label = weed_scene((400, 600), DENSITY, rng)
    mosaic = write_mosaic(root / "mosaic.tif", image, _transform())
    x0, y0 = ORIGIN
    fields = gpd.GeoDataFrame(
        {"field_id": ["west", "east"]},
        geometry=[box(x0, y0 - 4, x0 + 3, y0), box(x0 + 3, y0 - 4, x0 + 6, y0)],
        crs="EPSG:32633",
    )
    fields.to_file(root / "fields.gpkg")
    settings = {
        "scene": {"mask": "off", "chunks": 256},
        "problems": {"min_pixels": 100},
        "output": {"max_cards": 0, "patch_min_area_m2": MIN_PATCH_M2},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(settings))
    out = root / "report"
    code = main(["report", str(mosaic), "--fields", str(root / "fields.gpkg"), "--config",
                 str(root / "config.yaml"), "--model", str(weed_model), "--grid-cell",
                 str(CELL), "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return {"out": out, "label": label, "mosaic": mosaic, "model": weed_model}


def _predicted(case) -> np.ndarray:
    """The model run directly on the mosaic (the segmenter, not the report)."""
    from agrivision.io.scene import open_scene
    from agrivision.masks import MaskConfig
    from agrivision.segment import segment

    scene = open_scene([str(case["mosaic"])], chunks=256, mask=MaskConfig(method="off"))
    scene = scene.isel(time=-1) if "time" in scene.dims else scene
    return segment(scene, case["model"], precision="fp32")["classes"].values  # the report runs fp32


def test_cells_give_the_shares_of_the_models_classes(case):
    cells = gpd.read_file(case["out"] / "report.gpkg", layer="cells")
    assert (case["out"] / "cells.geojson").is_file()
    assert len(cells) == 24  # 2 fields x 3 x 4 cells of 1 m
    assert set(cells["field_id"]) == {"west", "east"}
    np.testing.assert_allclose(cells["area_ha"], 1e-4, rtol=1e-3)  # 1 m2
    shares = cells[["soil_pct", "crop_pct", "weed_pct"]].to_numpy()
    np.testing.assert_allclose(shares.sum(axis=1), 100.0)
    by_hand = cell_truth(_predicted(case), _transform(), cells)
    np.testing.assert_allclose(shares, by_hand, atol=1e-6)  # exactly the model's answer


@pytest.fixture(scope="module")
def expected_case(case, tmp_path_factory):
    """The same report with ``output.model_shares: probabilities``."""
    root = tmp_path_factory.mktemp("weed_report_expected")
    settings = yaml.safe_load((case["mosaic"].parent / "config.yaml").read_text())
    settings["output"]["model_shares"] = "probabilities"
    (root / "config.yaml").write_text(yaml.safe_dump(settings))
    out = root / "report"
    fields = case["mosaic"].parent / "fields.gpkg"
    code = main(["report", str(case["mosaic"]), "--fields", str(fields), "--config",
                 str(root / "config.yaml"), "--model", str(case["model"]), "--grid-cell",
                 str(CELL), "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return {**case, "out": out}


def _probabilities(case) -> np.ndarray:
    """The model's class probabilities on the mosaic (uint8 x 254), run directly."""
    from agrivision.io.scene import open_scene
    from agrivision.masks import MaskConfig
    from agrivision.segment import segment

    scene = open_scene([str(case["mosaic"])], chunks=256, mask=MaskConfig(method="off"))
    scene = scene.isel(time=-1) if "time" in scene.dims else scene
    return segment(scene, case["model"], precision="fp32", probabilities=True)[
        "probabilities"].values  # fmt: skip


def test_expected_shares_are_the_mean_probabilities(expected_case, case):
    """``model_shares: probabilities``: a cell's (and a field's) share of a class is the mean
    of its probability over the cell's pixels (normalised to add up to 100), by hand with
    numpy; the counted shares of the other report differ from them."""
    cells = gpd.read_file(expected_case["out"] / "report.gpkg", layer="cells")
    counted = gpd.read_file(case["out"] / "report.gpkg", layer="cells")
    assert len(cells) == 24
    names = ["soil_pct", "crop_pct", "weed_pct"]
    shares = cells[names].to_numpy()
    np.testing.assert_allclose(shares.sum(axis=1), 100.0)
    p = _probabilities(case).astype(float)
    # per cell (100 x 100 pixels on the 1 m grid): mean probability of each class
    h, w = p.shape[1:]
    means = p.reshape(3, h // 100, 100, w // 100, 100).mean(axis=(2, 4))
    rows = ((ORIGIN[1] - (cells["row"].to_numpy() + 1) * CELL) / GSD / 100).round().astype(int)
    cols = ((cells["col"].to_numpy() * CELL - ORIGIN[0]) / GSD / 100).round().astype(int)
    by_hand = means[:, rows, cols].T
    by_hand = 100 * by_hand / by_hand.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(shares, by_hand, atol=1e-6)
    # the shares of unsure pixels move: without the option the cells' shares are counts
    assert np.abs(counted[names].to_numpy() - shares).max() > 0.05
    table = gpd.read_file(expected_case["out"] / "fields.geojson").set_index("field_id")
    for fid, part in {"west": p[:, :, :300], "east": p[:, :, 300:]}.items():
        mean = part.mean(axis=(1, 2))
        np.testing.assert_allclose(table.loc[fid, names].astype(float), 100 * mean / mean.sum())
    truth = cell_truth(case["label"], _transform(), cells)
    assert np.abs(cells["weed_pct"].to_numpy() - truth[:, 2]).max() < 5.0


def test_cell_weed_shares_are_within_5_points_of_the_truth(case):
    cells = gpd.read_file(case["out"] / "report.gpkg", layer="cells")
    truth = cell_truth(case["label"], _transform(), cells)
    assert truth[:, 2].max() > 30  # the density varies: some cells are weedy
    error = np.abs(cells["weed_pct"].to_numpy() - truth[:, 2])
    assert error.max() < 5.0, (error.max(), truth[:, 2][error.argmax()])


def test_fields_get_the_shares_of_the_models_classes(case):
    table = gpd.read_file(case["out"] / "fields.geojson").set_index("field_id")
    truth = {"west": case["label"][:, :300], "east": case["label"][:, 300:]}
    for fid, lab in truth.items():
        for code, name in enumerate(CLASSES):
            expected = 100 * np.mean(lab == code)
            assert abs(table.loc[fid, f"{name}_pct"] - expected) < 5.0, (fid, name)
    # the schema's columns stay: CWFID-like soil and weed both land on bare soil
    assert {"healthy_pct", "bare_pct"} <= set(table.columns)


def test_weed_patches_are_a_layer_above_the_minimum_area(case):
    patches = gpd.read_file(case["out"] / "report.gpkg", layer="patches")
    assert len(patches) > 20
    assert set(patches["class_name"]) == {"weed"}
    assert set(patches["class"]) == {2}  # the model's code of weed
    assert patches["area_ha"].min() >= MIN_PATCH_M2 / 1e4
    predicted = _predicted(case)
    weed_m2 = (predicted == 2).sum() * GSD**2
    # nearly all predicted weed lies in a drawn patch: only specks are left out
    assert 0.9 * weed_m2 < patches["area_ha"].sum() * 1e4 <= weed_m2 * 1.001
    assert (case["out"] / "patches.geojson").is_file()


def test_summary_names_the_model(case):
    summary = json.loads((case["out"] / "summary.json").read_text())
    assert summary["classes"]["method"] == "model"
    assert summary["config"]["output"]["grid_cell_m"] == CELL
    # rasterio's notes on its own in-memory grids (threads race on its filter) are no warning
    assert not [w for w in summary["warnings"] if "geotransform" in w], summary["warnings"]


CANVAS_RGB = """([x, y]) => {
  const c = document.querySelector('.leaflet-model-pane canvas'), r = c.getBoundingClientRect();
  const px = (x - r.left) * c.width / r.width, py = (y - r.top) * c.height / r.height;
  return Array.from(c.getContext('2d').getImageData(px, py, 1, 1).data.slice(0, 3));
}"""


def hover(page, x: float, y: float) -> None:
    """Move the mouse to screen point (x, y) over Leaflet's canvas layers."""
    # Leaflet's canvas drops a mouse move that comes within 32 ms of the one it last handled
    # (Canvas._handleMouseHover): a person's mouse sends many moves, a test sends one.
    page.wait_for_timeout(40)
    page.mouse.move(x, y)


def test_report_map_draws_cells_and_patches(case):
    """In headless Chromium the weed share per cell is on by default, on the sequential ramp
    with its legend, and a hovered cell tells its shares; the patches layer tells a patch's
    area."""
    cells = gpd.read_file(case["out"] / "report.gpkg", layer="cells")
    patches = gpd.read_file(case["out"] / "report.gpkg", layer="patches")
    top = share_top(cells["weed_pct"].to_numpy())
    x0, y0 = ORIGIN
    with report_page(case["out"] / "report.html") as (page, problems):
        layers = page.locator(".leaflet-control-layers label")
        cell_toggle = layers.filter(has_text="weed share per grid cell · 24").locator("input")
        assert cell_toggle.is_checked()
        legend = page.locator(".model-legend").inner_text()
        assert "weed share per grid cell (%)" in legend and f"{top:g}" in legend

        def screen(x: float, y: float, field: dict) -> tuple[float, float]:
            # the west field spans x0..x0 + 3 m and y0 - 4 m..y0 on the screen
            return field["x"] + (x - x0) / 3 * field["width"], field["y"] + (y0 - y) / 4 * field[
                "height"]  # fmt: skip

        west = shape_box(page, "west")
        for _, cell in cells[cells["field_id"] == "west"].iloc[[0, 5, 10]].iterrows():
            sx, sy = screen(*cell.geometry.centroid.coords[0], west)
            hover(page, sx, sy)
            tip = page.locator(
                ".leaflet-tooltip", has_text=f"cell {cell['cell_id']} ·"
            ).inner_text()
            assert f"cell {cell['cell_id']} · field west" in tip
            assert (
                f"weed: {cell['weed_pct']:.1f} %" in tip
                and f"crop: {cell['crop_pct']:.1f} %" in tip
            )
            expected = ramp_rgb(np.array(cell["weed_pct"] / top), SHARE_RAMP)
            drawn = page.evaluate(CANVAS_RGB, [sx, sy])  # the fill, before blending
            np.testing.assert_allclose(drawn, expected, atol=2)

        layers.filter(has_text=f"weed patches · {len(patches)}").click()
        assert "weed patches" in page.locator(".model-legend").inner_text()
        big = patches[patches["field_id"] == "west"].sort_values("area_ha").iloc[-1]
        hover(page, *screen(*polylabel(big.geometry, 0.001).coords[0], west))
        tip = page.locator(".leaflet-tooltip", has_text="weed patch").inner_text()
        assert "weed patch · field west" in tip and f"area: {big['area_ha'] * 1e4:.1f} m²" in tip
    assert problems == []

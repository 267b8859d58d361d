"""Weed pressure on real crop/weed imagery: the 10 CWFID test images placed on a grid as one
georeferenced mosaic (a made-up 1 mm transform; built in a temporary folder, never kept), the
report's per-cell weed shares against the label truth.

The model: ``$AGRIVISION_CWFID_MODEL`` (a model directory) when set, else one trained from
``config/unet-cwfid.yaml`` into ``$AGRIVISION_TEST_CACHE`` (default
``~/.cache/agrivision-tests``, keyed by the config); without either the test skips and says
how to make one: training takes about 23 CPU min on a 2-core CPU, too long for the suite, and a model
trained in a few minutes is far from the truth. CWFID is for non-commercial research only:
neither the mosaic nor the weights go into the repository.

What it checks: every cell's weed share within 5 points of the truth and no bias beyond 2
points. The report runs with ``output.model_shares: probabilities``: a cell's share is the
mean weed probability over its pixels (exactly, see ``test_weed_pressure.py``), not the share
of pixels where weed is the likelier class. The truth of a cell is an interval: CWFID's
annotation leaves some plants out that its vegetation mask shows (11 % of one cell: a grass
in image 009), so the true weed share lies between the annotated weeds and those plus the
unannotated plants. With six of the config's models (three 80-epoch, three 48-epoch) all 64
cells lie within 2.4-4.9 points of it; counting the likelier class instead, two of the six
fail (5.6 and 5.8 points: one cell of 3.5 % weed where a crop plant is taken for weed with
probability 0.72). The expected share was chosen on
the trainer's validation blocks, not on these images (README, "Weed pressure from drone
imagery"). Against the annotation alone the two cells with unannotated plants are 9.5-10.6
points off.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from affine import Affine
from PIL import Image
from rasters import SHARED_DATA
from report.weed_mosaics import cell_truth, write_mosaic
from shapely.geometry import box

from agrivision.cli import main

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
pytest.importorskip("segmentation_models_pytorch")

TEST_IDS = (1, 3, 4, 9, 10, 13, 15, 21, 22, 26)
GSD = 0.001  # m per pixel (made up: CWFID is not georeferenced)
ORIGIN = (500000.0, 5800000.0)
CELL = 0.4  # m: 400 x 400 pixels
UNANNOTATED = 3  # a plant in CWFID's vegetation mask that its annotation leaves out


@pytest.fixture(scope="module")
def cwfid() -> Path:
    root = SHARED_DATA / "weeds_cwfid"
    if not root.is_dir():
        pytest.skip("../shared/data/weeds_cwfid is not available")
    return root


@pytest.fixture(scope="module")
def cwfid_model(cwfid) -> Path:
    """A weed model (see the module docstring)."""
    if os.environ.get("AGRIVISION_CWFID_MODEL"):
        return Path(os.environ["AGRIVISION_CWFID_MODEL"])
    repo_config = Path(__file__).resolve().parents[2] / "config" / "unet-cwfid.yaml"
    config = yaml.safe_load(repo_config.read_text())
    config["data"]["root"] = str(cwfid)
    text = yaml.safe_dump(config, sort_keys=True)
    cache = Path(os.environ.get("AGRIVISION_TEST_CACHE", Path.home() / ".cache/agrivision-tests"))
    model = cache / f"cwfid-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if not (model / "model.json").is_file():
        pytest.skip(
            "no CWFID model: set AGRIVISION_CWFID_MODEL to a model directory, or train one "
            f"(about 23 CPU min) with `agrivision train config/unet-cwfid.yaml -o {model}`"
        )
    return model


def _grid(arrays: list[np.ndarray]) -> np.ndarray:
    """The test images' arrays on a 2 x 5 grid."""
    return np.concatenate([np.concatenate(arrays[k : k + 5], axis=1) for k in (0, 5)])


def _mosaic(cwfid: Path, folder: Path) -> tuple[Path, np.ndarray, Affine]:
    """The test images on a 2 x 5 grid: (mosaic GeoTIFF, labels, transform). The labels are
    0 soil, 1 crop, 2 weed and :data:`UNANNOTATED` where CWFID's vegetation mask shows a
    plant that its annotation leaves out."""
    rgb = _grid([np.asarray(Image.open(cwfid / f"images/{i:03d}_image.png")) for i in TEST_IDS])
    label = _grid([np.asarray(Image.open(cwfid / f"labels/{i:03d}_label.png")) for i in TEST_IDS])
    plant = (
        _grid([np.asarray(Image.open(cwfid / f"masks/{i:03d}_mask.png")) for i in TEST_IDS]) == 0
    )
    label = np.where(plant & (label == 0), UNANNOTATED, label).astype(np.uint8)
    # channel 1 is red, channel 2 NIR (see the data's README); reflectance = DN / 255
    image = np.stack([rgb[..., 0], rgb[..., 1]]).astype(np.float32) / 255
    transform = Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1])
    return write_mosaic(folder / "cwfid_mosaic.tif", image, transform), label, transform


def test_cwfid_mosaic_weed_shares_per_cell_within_5_points(cwfid, cwfid_model, tmp_path):
    mosaic, label, transform = _mosaic(cwfid, tmp_path)
    h, w = label.shape  # 1932 x 6480 pixels
    x0, y0 = ORIGIN
    # two fields of whole cells inside the mosaic: 8 x 4 cells each
    fields = gpd.GeoDataFrame(
        {"field_id": [1, 2]},
        geometry=[box(x0, y0 - 1.6, x0 + 3.2, y0), box(x0 + 3.2, y0 - 1.6, x0 + 6.4, y0)],
        crs="EPSG:32633",
    )
    assert w * GSD > 6.4 and h * GSD > 1.6
    fields.to_file(tmp_path / "fields.gpkg")
    settings = {"scene": {"mask": "off", "chunks": 2048},
                "output": {"max_cards": 0, "model_shares": "probabilities"},
                "problems": {"min_pixels": 1000}}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(settings))
    out = tmp_path / "report"
    argv = ["report", str(mosaic), "--fields", str(tmp_path / "fields.gpkg"), "--config",
            str(tmp_path / "config.yaml"), "--model", str(cwfid_model), "--grid-cell", str(CELL),
            "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    cells = gpd.read_file(out / "report.gpkg", layer="cells")
    assert len(cells) == 64
    truth = cell_truth(label, transform, cells, n_classes=4)
    weed, unannotated = truth[:, 2], truth[:, UNANNOTATED]
    assert weed.max() > 10  # some cells are weedy
    # The true weed share lies between the annotated weeds and those plus the plants that the
    # annotation leaves out (up to 11 % of a cell: a grass in image 009).
    predicted = cells["weed_pct"].to_numpy()
    error = predicted - np.clip(predicted, weed, weed + unannotated)
    print(f"weed share per cell: annotated {np.round(weed, 1).tolist()}")
    print(f"unannotated plants per cell: {np.round(unannotated, 1).tolist()}")
    print(
        f"error (points): max {np.abs(error).max():.2f}, mean {error.mean():+.2f}, "
        f"{np.round(error, 1).tolist()}; against the annotation alone: max "
        f"{np.abs(predicted - weed).max():.2f}"
    )
    assert np.abs(error).max() < 5.0
    assert abs(error.mean()) < 2.0
    patches = gpd.read_file(out / "report.gpkg", layer="patches")
    assert set(patches["class_name"]) == {"weed"} and len(patches) > 10

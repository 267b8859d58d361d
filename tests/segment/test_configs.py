"""The shipped segmentation configs validate and point at the data they document."""

from __future__ import annotations

from pathlib import Path

import pytest

from agrivision.segment.config import load_config
from agrivision.segment.data import resolve
from agrivision.segment.synthetic_tiles import write_tiles

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


def test_synthetic_config_matches_the_generated_tiles(tmp_path):
    cfg = load_config(REPO / "config" / "unet-synthetic.yaml")
    assert Path(cfg.data.root) == REPO / "demo-output" / "synthetic-tiles"
    assert Path(cfg.output) == REPO / "demo-output" / "unet-synthetic"
    write_tiles(tmp_path, n=24, size=16)  # the documented command, with tiny tiles
    train = resolve(cfg.data.train, tmp_path)
    evaluation = resolve(cfg.data.evaluation, tmp_path)
    assert [p.image.name for p in train] == [f"tile_{i:03d}.tif" for i in range(20)]
    assert [p.image.name for p in evaluation] == [f"tile_{i:03d}.tif" for i in range(20, 24)]
    assert evaluation[0].labels.name == "tile_020_label.tif"


@pytest.mark.realdata
def test_cwfid_config_uses_train_ids_for_training_and_test_ids_for_evaluation():
    import yaml

    cfg = load_config(REPO / "config" / "unet-cwfid.yaml")
    assert Path(cfg.data.root) == (DATA / "weeds_cwfid").resolve()
    assert cfg.model.bands == ("red", "nir") and cfg.model.classes == ("soil", "crop", "weed")
    if not (DATA / "weeds_cwfid").exists():
        pytest.skip("CWFID data not present")
    split = yaml.safe_load((DATA / "weeds_cwfid" / "train_test_split.yaml").read_text())
    train_ids, test_ids = set(cfg.data.train.ids), set(cfg.data.evaluation.ids)
    assert train_ids <= set(split["train"]) and test_ids <= set(split["test"])
    assert not train_ids & test_ids and cfg.data.validation is None
    assert len(resolve(cfg.data.train, cfg.data.root)) == 40  # the whole official train list
    assert "non-commercial" in cfg.data.licence
    assert len(resolve(cfg.data.evaluation, cfg.data.root)) == 10

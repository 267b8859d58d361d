"""``agrivision chips``: chip pairs, index, deterministic spatial split; training from chips."""

from __future__ import annotations

import json
from itertools import product

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import box

from agrivision.cli.segment import chips
from agrivision.errors import ConfigError, SourceError
from agrivision.segment.chip_folders import chip_pairs, read_index, write_chips
from agrivision.segment.config import load_config
from agrivision.segment.evaluation import evaluate
from agrivision.segment.training import train

TRANSFORM = from_origin(500000, 5800000, 10, 10)


def _scene(root, name, h, w, seed):
    """A 2-band uint16 raster (values encode row/col) and a uint8 label raster with 3 classes."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:h, 0:w]
    image = np.stack([rows * 1000 + cols, rng.integers(0, 10000, (h, w))]).astype(np.uint16)
    label = ((rows // 7 + cols // 5) % 3).astype(np.uint8)
    label[:4, :4] = 255  # unlabelled corner
    common = dict(driver="GTiff", width=w, height=h, crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(root / f"{name}.tif", "w", count=2, dtype="uint16", nodata=0, **common) as d:
        d.write(image)
        d.descriptions = ("red", "nir")
    with rasterio.open(root / f"{name}_label.tif", "w", count=1, dtype="uint8", **common) as d:
        d.write(label[None])
    return root / f"{name}.tif", root / f"{name}_label.tif", image, label


@pytest.fixture
def scenes(tmp_path):
    a = _scene(tmp_path, "a", 160, 140, 0)
    b = _scene(tmp_path, "b", 70, 100, 1)
    return tmp_path, [a, b]


def _run(tmp_path, scenes, out, *extra):
    args = []
    for image, label, *_ in scenes:
        args += ["--image", str(image), "--labels", str(label)]
    result = CliRunner().invoke(chips, [*args, "--size", "32", "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return read_index(out)


def test_same_seed_same_chips_and_split(scenes):
    root, items = scenes
    a = _run(root, items, root / "c1", "--seed", "3", "--overlap", "8")
    b = _run(root, items, root / "c2", "--seed", "3", "--overlap", "8")
    assert (root / "c1" / "index.json").read_bytes() == (root / "c2" / "index.json").read_bytes()
    for rec in a["chips"]:
        for key in ("image", "label"):
            with (
                rasterio.open(root / "c1" / rec[key]) as x,
                rasterio.open(root / "c2" / rec[key]) as y,
            ):
                np.testing.assert_array_equal(x.read(), y.read())
    c = _run(root, items, root / "c3", "--seed", "4", "--overlap", "8")
    split = lambda idx: [(r["image"], r["split"]) for r in idx["chips"]]  # noqa: E731
    assert split(a) == split(b) != split(c)
    assert {"train", "validation"} == {r["split"] for r in a["chips"]}


@pytest.mark.parametrize(("seed", "overlap", "block"), list(product([0, 1], [0, 12], [64, 96])))
def test_splits_are_disjoint_in_space_and_blocks_do_not_touch(scenes, seed, overlap, block):
    root, items = scenes
    out = root / f"c{seed}_{overlap}_{block}"
    index = write_chips([i[0] for i in items], [i[1] for i in items], out, size=32,
                        overlap=overlap, seed=seed, block=block, val_fraction=0.3)  # fmt: skip
    buffer = read_index(out)["settings"]["buffer"]
    assert buffer == 4 and index.name == "index.json"  # default: size / 8
    records = read_index(out)["chips"]
    assert {"train", "validation"} == {r["split"] for r in records}
    for src in range(2):
        boxes = {"train": [], "validation": []}
        for r in records:
            if r["source"] == src:
                w = r["window"]
                boxes[r["split"]].append((w["row"], w["row"] + 32, w["col"], w["col"] + 32))
        for (r0, r1, c0, c1), (s0, s1, t0, t1) in product(boxes["train"], boxes["validation"]):
            gap = max(s0 - r1, r0 - s1, t0 - c1, c0 - t1)  # > 0: separated along some axis
            assert gap >= buffer
    # every validation chip lies inside validation blocks listed in the index
    for r in records:
        if r["split"] == "validation":
            blocks = {
                tuple(b) for b in read_index(out)["sources"][r["source"]]["validation_blocks"]
            }
            w = r["window"]
            for y, x in product((w["row"], w["row"] + 31), (w["col"], w["col"] + 31)):
                assert (y // block * block, x // block * block) in blocks


def test_chips_hold_the_source_pixels_georeferenced_with_counts(scenes):
    root, items = scenes
    index = _run(root, items, root / "c", "--overlap", "8")
    assert {r["source"] for r in index["chips"]} == {0, 1}
    for rec in index["chips"][::3]:
        w = rec["window"]
        rows, cols = slice(w["row"], w["row"] + 32), slice(w["col"], w["col"] + 32)
        ref_image, ref_label = items[rec["source"]][2], items[rec["source"]][3]
        with rasterio.open(root / "c" / rec["image"]) as src:
            np.testing.assert_array_equal(src.read(), ref_image[:, rows, cols])
            assert src.descriptions == ("red", "nir") and src.nodata == 0
            assert src.crs.to_epsg() == 32633
            assert src.transform == TRANSFORM * rasterio.Affine.translation(w["col"], w["row"])
        with rasterio.open(root / "c" / rec["label"]) as src:
            chip = src.read(1)
            np.testing.assert_array_equal(chip, ref_label[rows, cols])
        counts = np.bincount(chip.ravel(), minlength=256)
        assert rec["class_counts"] == {str(k): int(counts[k]) for k in range(3) if counts[k]}
        assert rec["unlabelled"] == counts[255]


def test_vector_labels_are_rasterised_per_chip(tmp_path):
    image, *_ = _scene(tmp_path, "v", 64, 64, 0)
    # pixel (row, col) covers x 500000 + 10 col .. +10, y 5800000 - 10 row .. -10
    polygons = gpd.GeoDataFrame(
        {"cls": [1, 2]},
        geometry=[
            box(500000, 5800000 - 200, 500000 + 100, 5800000),  # rows 0-19, cols 0-9
            box(500000 + 400, 5800000 - 640, 500000 + 640, 5800000 - 400),
        ],  # rows/cols 40-63
        crs="EPSG:32633",
    ).to_crs("EPSG:4326")  # another CRS: reprojected onto the image's grid
    polygons.to_file(tmp_path / "labels.geojson")
    write_chips([image], [tmp_path / "labels.geojson"], tmp_path / "c", size=32,
                val_fraction=0, class_column="cls")  # fmt: skip
    records = read_index(tmp_path / "c")["chips"]
    by_corner = {(r["window"]["row"], r["window"]["col"]): r for r in records}
    # chips without any polygon (rows 32-63, cols 0-31 and rows 0-31, cols 32-63) are dropped
    assert set(by_corner) == {(0, 0), (32, 32)}
    assert by_corner[(0, 0)]["class_counts"] == {"1": 200}
    assert by_corner[(0, 0)]["unlabelled"] == 32 * 32 - 200
    assert by_corner[(32, 32)]["class_counts"] == {"2": 24 * 24}
    with rasterio.open(tmp_path / "c" / by_corner[(32, 32)]["label"]) as src:
        expected = np.full((32, 32), 255)
        expected[8:, 8:] = 2
        np.testing.assert_array_equal(src.read(1), expected)
    with pytest.raises(ConfigError, match="class column"):
        write_chips([image], [tmp_path / "labels.geojson"], tmp_path / "d", size=32)
    with pytest.raises(SourceError, match="no column 'kind'"):
        write_chips([image], [tmp_path / "labels.geojson"], tmp_path / "d", size=32,
                    class_column="kind", overwrite=True)  # fmt: skip


def test_plain_images_and_errors(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    Image.fromarray((np.arange(70 * 90).reshape(70, 90) % 3).astype(np.uint8)).save(
        tmp_path / "lab.png"
    )
    write_chips([tmp_path / "img.png"], [tmp_path / "lab.png"], tmp_path / "c", size=32)
    rec = read_index(tmp_path / "c")["chips"][0]
    with rasterio.open(tmp_path / "c" / rec["image"]) as src:
        assert src.crs is None and src.count == 3
        w = rec["window"]
        np.testing.assert_array_equal(
            src.read().transpose(1, 2, 0), rgb[w["row"] : w["row"] + 32, w["col"] : w["col"] + 32]
        )
    with pytest.raises(ConfigError, match="1 images and 2 label files"):
        write_chips([tmp_path / "img.png"], [tmp_path / "lab.png"] * 2, tmp_path / "d")
    Image.fromarray(np.zeros((60, 90), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(SourceError, match="60x90, the image 70x90"):
        write_chips([tmp_path / "img.png"], [tmp_path / "small.png"], tmp_path / "e", size=32)
    with pytest.raises(ConfigError, match="no labelled 128-pixel chip"):
        write_chips([tmp_path / "img.png"], [tmp_path / "lab.png"], tmp_path / "f", size=128)


def test_training_and_evaluation_from_a_chip_directory(tmp_path, tiles, config_file):
    images = sorted(tiles.glob("tile_00[0-3].tif"))
    labels = [p.with_name(p.stem + "_label.tif") for p in images]
    write_chips(images, labels, tmp_path / "chips", size=64, block=64, val_fraction=0.25)
    n_train, n_val = (len(chip_pairs(tmp_path / "chips", s)) for s in ("train", "validation"))
    assert n_train > 0 and n_val > 0
    path = config_file(
        tmp_path / "c.yaml", tiles,
        **{"data.train": None, "data.evaluation": None, "data.chips": str(tmp_path / "chips"),
           "training.epochs": 1},
    )  # fmt: skip
    cfg = load_config(path)
    result = train(cfg, tmp_path / "m", progress=False)
    assert result.epochs_run == 1
    scores = evaluate(tmp_path / "m", cfg)
    assert scores["split"] == "validation chips" and scores["images"] == n_val
    # validation chips have no unlabelled pixels here: every pixel is scored
    assert scores["pixels"] == n_val * 64 * 64
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert len(meta["data_fingerprint"]) == 64

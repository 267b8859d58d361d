"""Duplicate detection on a synthetic collection with planted copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage

from agrivision.screening import dhash, footprint_iou, hamming, screen

BANDS = ("blue", "green", "red", "nir")


def _write(
    path: Path,
    data: np.ndarray,
    *,
    x0: float,
    y0: float,
    date: str | None,
    dtype="float32",
    compress="deflate",
) -> Path:
    profile = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=dtype,
        crs="EPSG:32633",
        transform=from_origin(x0, y0, 10, 10),
        compress=compress,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype))
        dst.descriptions = BANDS
        if date:
            dst.update_tags(DATETIME=date)
    return path


def _texture(seed: int, shape=(96, 96)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random(shape), 3)
    base = (base - base.min()) / np.ptp(base)
    return np.stack(
        [0.05 + 0.1 * base, 0.08 + 0.1 * base, 0.06 + 0.15 * (1 - base), 0.3 + 0.3 * base]
    ).astype(np.float32)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """10 distinct scenes (hard cases included) + 3 planted duplicates."""
    d = tmp_path_factory.mktemp("collection")
    (d / "copies").mkdir()
    scenes = {}
    for i in range(10):
        # Scenes 0..3 share one footprint on different dates; 4 shares scene 0's date but
        # not its footprint; the rest are elsewhere, on other dates.
        x0 = 500000.0 if i < 4 else 500000.0 + 2000 * i
        date = "2024-06-01" if i in (0, 4) else f"2024-06-{2 + i:02d}"
        scenes[i] = _write(d / f"scene{i:02d}.tif", _texture(i), x0=x0, y0=5800000.0, date=date)
    # 1. identical copy (same bytes, same name, another folder)
    shutil.copy(scenes[1], d / "copies" / "scene01.tif")
    # 2. re-encoded copy: uint16 DN (x 10000) with 1 % noise, LZW
    noisy = _texture(2) * (1 + 0.01 * np.random.default_rng(99).standard_normal((4, 96, 96)))
    _write(
        d / "copies" / "scene02_dn.tif",
        (noisy * 10000).round(),
        dtype="uint16",
        compress="lzw",
        x0=500000.0,
        y0=5800000.0,
        date="2024-06-04",
    )
    # 3. copy under another name without its date tag (content is all that says "copy")
    _write(
        d / "copies" / "renamed_capture.tif",
        _texture(5),
        x0=500000.0 + 2000 * 5,
        y0=5800000.0,
        date=None,
    )
    return d


def test_all_planted_duplicates_found_and_no_distinct_scene_flagged(collection):
    table = screen([collection, collection / "copies"]).table.set_index("scene_id")
    expected = {"scene01~2": "scene01", "scene02_dn": "scene02", "renamed_capture": "scene05"}
    flagged = table.loc[table["duplicate_of"] != "", "duplicate_of"].to_dict()
    assert flagged == expected
    assert "same footprint" in table.loc["scene01~2", "duplicate_reason"]
    # The re-encoded copy is also near-identical by content (not only by footprint+date).
    bits = {
        k: np.unpackbits(np.frombuffer(bytes.fromhex(table.loc[k, "hash"]), np.uint8))
        for k in ("scene02", "scene02_dn")
    }
    assert hamming(bits["scene02"], bits["scene02_dn"]) <= 20
    assert "content" in table.loc["renamed_capture", "duplicate_reason"]
    assert not table.loc[list(expected), "keep"].any()
    assert table.drop(index=list(expected))["keep"].all()


def test_dhash_ignores_contrast_and_noise_but_not_other_content():
    a = _texture(1)[3]
    rng = np.random.default_rng(0)
    assert hamming(dhash(a), dhash(3 * a + 7)) == 0
    assert hamming(dhash(a), dhash(a + 0.003 * rng.standard_normal(a.shape))) <= 10
    distances = [hamming(dhash(a), dhash(_texture(s)[3])) for s in range(2, 12)]
    assert min(distances) > 60  # of 256 bits; ~128 expected for unrelated textures


def test_footprint_iou_closed_form_and_across_crs():
    assert footprint_iou((0, 0, 10, 10), "EPSG:32633", (5, 0, 15, 10), "EPSG:32633") == (
        pytest.approx(50 / 150)
    )
    assert footprint_iou((0, 0, 10, 10), "EPSG:32633", (20, 0, 30, 10), "EPSG:32633") == 0.0
    box = (500000.0, 5800000.0, 501000.0, 5801000.0)
    from rasterio.warp import transform_bounds

    wgs = transform_bounds("EPSG:32633", "EPSG:4326", *box)
    assert footprint_iou(box, "EPSG:32633", wgs, "EPSG:4326") > 0.95

"""Quality bands decoded into categories; valid masks and fractions against numpy counts."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from agrivision.masks import MaskConfig, apply_mask, cloud_fraction, valid_fraction, valid_mask


def scene_with(**masks) -> xr.Dataset:
    shape = next(iter(masks.values())).shape
    red = np.full(shape, 0.05, dtype=np.float32)
    red[0, 0] = np.nan
    ds = xr.Dataset({"red": (("y", "x"), red)})
    for name, arr in masks.items():
        ds[name] = (("y", "x"), arr)
    return ds.chunk(2)


def test_scl_default_and_configured_categories():
    scl = np.array([[4, 8, 9, 10], [3, 11, 6, 1], [0, 5, 2, 7]], dtype=np.uint8)
    ds = scene_with(scl=scl)
    valid = valid_mask(ds).values
    expected = np.isin(scl, [4, 6, 5, 2, 7])  # vegetation, water, bare, dark, unclassified
    expected[0, 0] = False  # NaN reflectance
    np.testing.assert_array_equal(valid, expected)
    strict = valid_mask(ds, MaskConfig(exclude=("nodata", "cloud", "water"))).values
    assert not strict[1, 2] and strict[1, 0]  # water masked, shadow now kept


def test_qa_pixel_bits():
    fill, cloud, shadow, clear, water = 1, 1 << 3 | 1 << 6, 1 << 4, 1 << 6, 1 << 7 | 1 << 6
    qa = np.array([[fill, cloud, shadow, clear], [water, clear, clear, clear]], dtype=np.uint16)
    valid = valid_mask(scene_with(qa_pixel=qa)).values
    np.testing.assert_array_equal(valid, [[False, False, False, True], [True, True, True, True]])


def test_fmask_and_cloud_probability():
    fmask = np.array([[0, 1, 2, 3], [4, 255, 0, 0]], dtype=np.uint8)
    v = valid_mask(scene_with(fmask=fmask)).values
    np.testing.assert_array_equal(v, [[False, True, False, False], [False, False, True, True]])
    prob = np.array([[0.1, 0.39, 0.4, 0.9]], dtype=np.float32)
    assert valid_mask(scene_with(cloud_probability=prob)).values.tolist() == [
        [False, True, False, False]
    ]
    pct = np.array([[10, 39, 40, 90]], dtype=np.uint8)
    cfg = MaskConfig(cloud_probability_threshold=0.5)
    assert valid_mask(scene_with(cloud_probability=pct), cfg).values.tolist() == [
        [False, True, True, False]
    ]


def test_apply_mask_keeps_quality_band_and_fractions_match_numpy():
    rng = np.random.default_rng(1)
    scl = rng.choice(np.array([4, 5, 8, 9, 3, 0], dtype=np.uint8), size=(20, 30))
    ds = scene_with(scl=scl)
    masked = apply_mask(ds)
    assert "scl" in masked and masked["scl"].dtype == np.uint8
    assert np.isnan(masked["red"].values[np.isin(scl, [8, 9, 3, 0])]).all()
    usable = np.isin(scl, [4, 5])
    usable[0, 0] = False
    assert float(valid_fraction(ds)) == pytest.approx(usable.mean())
    present = scl != 0
    cloudy = np.isin(scl, [8, 9, 3]) & present
    assert float(cloud_fraction(ds)) == pytest.approx(cloudy.sum() / present.sum())


def test_masks_stay_lazy():
    ds = scene_with(scl=np.full((4, 4), 4, dtype=np.uint8))
    assert valid_mask(ds).chunks is not None
    assert apply_mask(ds)["red"].chunks is not None

"""``masks: auto`` on synthetic Sentinel-2 L1C products (no quality band) with known clouds."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rasterio

from agrivision import open_scene
from agrivision.errors import MaskError
from agrivision.masks import CloudMaskWarning, MaskConfig, mask_scene
from agrivision.synthetic import synthetic_scene, write_synthetic

SEED, SHAPE = 2, (512, 512)  # about 17 % cloud, 5 % thin cirrus, 13 % shadow on this date


@pytest.fixture(scope="module")
def l1c(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp("l1c"), SEED, shape=SHAPE, sensor="sentinel-2-l1c", chunks=256
    )


@pytest.fixture(scope="module")
def truth(l1c) -> np.ndarray:
    with rasterio.open(l1c.truth_clouds) as src:
        return src.read(1)


def scores(codes: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    cloud, shadow = np.isin(truth, (1, 2)), truth == 3
    found, cast = codes == 1, codes == 2
    return {
        "agreement": float((cloud == found).mean()),
        "thick": float(found[truth == 1].mean()),
        "thin": float(found[truth == 2].mean()),
        "false_cloud": float(found[truth == 0].mean()),
        "shadow_recall": float((cast & shadow).sum() / shadow.sum()),
        "shadow_precision": float((cast & shadow).sum() / cast.sum()),
    }


def test_l1c_without_quality_band_gets_s2cloudless_clouds_and_shadows(l1c, truth):
    assert not any("SCL" in p.name for p in l1c.rasters[l1c.dates[0]].values())
    scene = open_scene(l1c.items)  # no mask argument: auto
    assert scene.attrs["mask"] == "s2cloudless"
    assert scene.attrs["view:sun_azimuth"] == 160.0  # from the STAC items
    codes = scene["auto_mask"].values
    s = scores(codes, truth)
    assert 0.15 < np.isin(truth, (1, 2)).mean() < 0.25 and (truth == 3).mean() > 0.1
    assert s["agreement"] >= 0.97  # measured 0.978
    assert s["thick"] >= 0.99 and s["thin"] >= 0.85  # measured 1.000 and 0.904
    assert s["false_cloud"] <= 0.02  # measured 0.015 (the dilation rim)
    assert s["shadow_recall"] >= 0.75 and s["shadow_precision"] >= 0.95  # 0.804 and 0.990
    # Masked reflectance is NaN exactly where a cloud or shadow was found (the last two rows
    # and columns lie outside the 60 m band files: nodata).
    inside = np.s_[:510, :510]
    np.testing.assert_array_equal(np.isnan(scene["nir"].values[inside]), codes[inside] > 0)


def test_file_dates_alone_place_the_sun_close_enough(l1c, truth):
    # Band files carry only a date: the sun is computed for 10:30 local solar time.
    scene = open_scene(l1c.outdir)
    assert "view:sun_azimuth" not in scene.attrs
    s = scores(scene["auto_mask"].values, truth)
    assert s["agreement"] >= 0.97
    assert s["shadow_recall"] >= 0.6 and s["shadow_precision"] >= 0.9


def test_mask_is_lazy_and_independent_of_chunks_and_dates():
    scene, _ = synthetic_scene(SEED, shape=(300, 300), sensor="sentinel-2-l1c", chunks=300)
    big = mask_scene(scene, MaskConfig(), detector="s2cloudless")
    small = mask_scene(scene.chunk(64), MaskConfig(), detector="s2cloudless")
    assert isinstance(small["auto_mask"].data, da.Array)
    assert small["auto_mask"].data.chunksize == (64, 64)
    np.testing.assert_array_equal(big["auto_mask"].values, small["auto_mask"].values)
    series, _ = synthetic_scene(
        SEED, shape=(300, 300), sensor="sentinel-2-l1c", chunks=100,
        dates=["2024-05-01", "2024-06-15"],
    )  # fmt: skip
    masked = mask_scene(series, MaskConfig(), detector="s2cloudless")
    assert masked["auto_mask"].dims == ("time", "y", "x")
    for t in range(2):
        one = mask_scene(series.isel(time=t), MaskConfig(), detector="s2cloudless")
        np.testing.assert_array_equal(masked["auto_mask"][t].values, one["auto_mask"].values)


def test_four_band_files_fall_back_to_the_spectral_test(tmp_path, truth):
    files = write_synthetic(
        tmp_path, SEED, shape=SHAPE, sensor="sentinel-2-l1c", chunks=256,
        bands=["B02", "B03", "B04", "B08"],
    )  # fmt: skip
    with pytest.warns(CloudMaskWarning, match=r"spectral test .*s2cloudless needs bands coastal"):
        scene = open_scene(files.items)
    assert scene.attrs["mask"] == "spectral"
    assert list(scene.data_vars) == ["blue", "green", "red", "nir", "auto_mask"]
    s = scores(scene["auto_mask"].values, truth)
    assert s["agreement"] >= 0.97 and s["thick"] >= 0.99  # measured 0.984 and 1.000
    assert s["shadow_recall"] >= 0.75 and s["shadow_precision"] >= 0.95  # 0.829 and 0.985
    with pytest.raises(MaskError, match=r"needs bands coastal.*--mask spectral"):
        open_scene(files.items, mask="s2cloudless")


def test_select_reads_the_mask_bands_too(l1c):
    full = open_scene(l1c.items)
    some = open_scene(l1c.items, select=["red", "nir"])
    assert list(some.data_vars) == ["red", "nir"] and some.attrs["mask"] == "s2cloudless"
    np.testing.assert_array_equal(np.isnan(some["red"].values), np.isnan(full["red"].values))


def test_switches_and_forced_methods(l1c):
    assert open_scene(l1c.items, mask=False).attrs["mask"] == "off"
    assert "auto_mask" not in open_scene(l1c.items, mask="off")
    assert open_scene(l1c.items, mask=True).attrs["mask"] == "s2cloudless"
    forced = open_scene(l1c.items, mask="spectral")
    assert forced.attrs["mask"] == "spectral"
    with pytest.raises(MaskError, match="no quality band"):
        open_scene(l1c.items, mask="quality")
    with pytest.raises(MaskError, match=r"unknown mask method 'clouds'.*auto, quality"):
        open_scene(l1c.items, mask="clouds")


def test_quality_band_wins_and_drones_get_no_automatic_mask():
    l2a, _ = synthetic_scene(SEED, shape=(128, 128), chunks=128)  # ships SCL
    masked = mask_scene(l2a, MaskConfig(), detector="s2cloudless")
    assert masked.attrs["mask"] == "quality:scl" and "auto_mask" not in masked
    drone = l2a[["blue", "green", "red", "nir"]]
    assert mask_scene(drone, MaskConfig(), detector="none").attrs["mask"] == "none"
    with pytest.warns(CloudMaskWarning, match="sensor unknown"):
        assert mask_scene(drone, MaskConfig(), detector=None).attrs["mask"] == "none"


def test_landsat_without_qa_pixel_uses_the_spectral_test():
    scene, truth = synthetic_scene(SEED, shape=(512, 512), sensor="landsat-8-c2-l2", chunks=256)
    assert "nir" not in scene and "nir08" in scene  # the dark test falls back to nir08
    with pytest.warns(CloudMaskWarning, match="spectral test .*no quality band"):
        masked = mask_scene(scene, MaskConfig(), detector="spectral")
    assert masked.attrs["mask"] == "spectral"
    s = scores(masked["auto_mask"].values, truth.clouds.values)
    assert s["agreement"] >= 0.97 and s["thick"] >= 0.99  # measured 0.977 and 1.000
    # Surface reflectance shadows keep 40 % of the light: vegetation in them is rarely dark.
    assert s["shadow_recall"] >= 0.1 and s["shadow_precision"] >= 0.9  # 0.20 and 0.99

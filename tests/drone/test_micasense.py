"""MicaSense metadata, radiance, panel and reflectance on synthetic captures (known truth)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from drone.capture import (
    A1,
    BLACK,
    EXPOSURE,
    IRRADIANCE,
    OFFSETS,
    PANEL_BOX,
    PANEL_REFL,
    SHAPE,
    dn_from_radiance,
    panel_scene,
    scene_reflectance,
    vignette,
    write_band,
    write_capture,
)
from rasterio.errors import NotGeoreferencedWarning

from agrivision.drone.micasense import (
    PROFILE_ORDER,
    calibrate,
    find_captures,
    find_panel,
    radiance,
    read_metadata,
    write_reflectance,
)
from agrivision.errors import MissingCRSError, SensorError, SourceError
from agrivision.indices import compute
from agrivision.io.scene import open_scene

NAMES = dict(enumerate(PROFILE_ORDER[:3], start=1)) | {4: "nir", 5: "rededge"}
PANEL = {NAMES[b]: v for b, v in PANEL_REFL.items()}


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("capture")
    write_capture(folder, "IMG_0000", panel_scene)
    write_capture(folder, "IMG_0001", scene_reflectance)
    return find_captures(folder)


@pytest.fixture(scope="module")
def calibrated(captures):
    panel, scene = captures
    return calibrate(scene, panel, PANEL, undistort_lens=False)


def test_metadata_is_read_from_exif_and_xmp(captures):
    meta = captures[1].bands["nir"]
    assert meta.band == "nir" and meta.wavelength_nm == 840
    assert meta.black_level == BLACK and meta.exposure_s == pytest.approx(EXPOSURE)
    assert meta.gain == 1.0 and meta.bits == 16 and meta.radiometric_cal[0] == A1
    lat, lon, alt = captures[1].position
    assert lat == pytest.approx(36 + 34 / 60 + 33.5 / 3600)
    assert lon == pytest.approx(-(119 + 26 / 60 + 6.9 / 3600))
    assert alt == pytest.approx(174.5)
    assert captures[1].datetime.isoformat() == "2017-10-19T20:42:10"


def test_radiance_inverts_the_published_model(tmp_path):
    rng = np.random.default_rng(1)
    truth = (0.02 + 0.1 * rng.random(SHAPE)).astype(np.float32)
    path = write_band(tmp_path / "X_4.tif", dn_from_radiance(truth), 4)
    got = radiance(read_metadata(path))
    # DN rounding is the only loss: 1 DN in ~1e4.
    np.testing.assert_allclose(got, truth, rtol=2e-3, atol=2e-5)


def test_vignetting_brightens_the_corners_by_the_polynomial(captures):
    from agrivision.drone.micasense import vignetting

    v = vignetting(captures[0].bands["blue"])
    np.testing.assert_allclose(v, vignette(), rtol=1e-6)
    assert v[0, 0] > 1.0


def test_panel_is_found_and_not_confused_with_the_qr_code(captures):
    meta = captures[0].bands["red"]  # red has no offset: the panel is where it was drawn
    region = find_panel(radiance(meta))
    r0, r1, c0, c1 = PANEL_BOX
    # The uniform interior: the 9 px uniformity window trims the edges by a few pixels.
    assert r0 <= region.rows[0] <= r0 + 6 and r1 - 6 <= region.rows[1] <= r1
    assert c0 <= region.cols[0] <= c0 + 6 and c1 - 6 <= region.cols[1] <= c1
    assert region.mean_radiance == pytest.approx(PANEL_REFL[3] * IRRADIANCE / np.pi, rel=2e-3)


def test_panel_window_given_by_the_user(captures):
    rad = radiance(captures[0].bands["red"])
    region = find_panel(rad, window=(90, 140, 140, 190))
    assert region.mean_radiance == pytest.approx(PANEL_REFL[3] * IRRADIANCE / np.pi, rel=2e-3)


def test_no_panel_raises_with_the_fix(captures):
    rad = radiance(captures[1].bands["red"]) * 0 + 0.1
    with pytest.raises(SourceError, match="--panel-window"):
        find_panel(rad)


def test_calibration_recovers_the_reflectance_and_the_band_offsets(calibrated):
    ds = calibrated.reflectance
    assert list(ds.data_vars) == list(PROFILE_ORDER)
    inner = (slice(12, -12), slice(12, -12))
    for band, name in NAMES.items():
        truth = scene_reflectance(band)
        got = ds[name].values[inner]
        err = np.nanmedian(np.abs(got - truth[inner]) / truth[inner])
        assert err < 0.01, (name, err)
        a = calibrated.alignment[name]
        np.testing.assert_allclose(a.shift, OFFSETS[band], atol=0.15)
        assert a.residual_median_px <= 0.15


def test_missing_panel_reflectance_asks_for_the_option(captures):
    with pytest.raises(SensorError, match="--panel-reflectance"):
        calibrate(captures[1], captures[0], None)


def test_panel_albedo_from_metadata_is_used(tmp_path):
    write_capture(tmp_path, "IMG_0000", panel_scene, albedo=PANEL_REFL)
    write_capture(tmp_path, "IMG_0001", scene_reflectance)
    panel, scene = find_captures(tmp_path)
    result = calibrate(scene, panel, None, undistort_lens=False)
    truth = scene_reflectance(3)[20:-20, 20:-20]
    assert np.nanmedian(result.reflectance["red"].values[20:-20, 20:-20] / truth) == (
        pytest.approx(1.0, abs=0.01)
    )


def test_incomplete_capture_is_refused(tmp_path, captures):
    (tmp_path / "IMG_0009_1.tif").write_bytes(open(captures[1].bands["blue"].path, "rb").read())
    with pytest.raises(SourceError, match=r"needs 1\.\.5"):
        find_captures(tmp_path)


def test_written_geotiff_is_float32_profile_order_and_says_not_georeferenced(calibrated, tmp_path):
    out = write_reflectance(calibrated, tmp_path / "refl.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(out) as src:
            assert src.count == 5 and src.dtypes == ("float32",) * 5
            assert src.descriptions == PROFILE_ORDER
            assert src.crs is None
            tags = src.tags()
            assert tags["SENSOR"] == "micasense-rededge" and tags["GEOREFERENCED"] == "no"
            assert tags["DATETIME"].startswith("2017-10-19T20:42:10")
            assert float(src.tags(4)["ALIGN_RESIDUAL_MEDIAN_PX"]) <= 0.15
            np.testing.assert_array_equal(src.read(3), calibrated.reflectance["red"].values)
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_open_scene_reads_the_output_with_the_profile(calibrated, tmp_path):
    out = write_reflectance(calibrated, tmp_path / "refl.tif")
    scene = open_scene(out, sensor="micasense-rededge")
    assert list(scene.data_vars) == ["blue", "green", "red", "rededge", "nir"]
    assert scene.attrs["georeferenced"] is False and scene.rio.crs is None
    # pixel grid: row 0 stays on top, values unscaled reflectance as written
    np.testing.assert_array_equal(
        scene["red"].values, calibrated.reflectance["red"].values.astype(np.float32)
    )
    ndvi = compute(scene, "NDVI")["NDVI"]
    assert ndvi.shape == scene["red"].shape and float(ndvi.max()) <= 1.0


def test_a_raster_without_crs_and_without_the_tag_is_still_refused(tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32"
    ) as dst:
        dst.write(np.ones((1, 4, 4), np.float32))
    with pytest.raises(MissingCRSError):
        open_scene(path, sensor="micasense-rededge")


def test_a_frame_that_is_not_a_tiff_is_a_clear_error(tmp_path):
    from PIL import Image

    path = tmp_path / "IMG_0001_1.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    with pytest.raises(SourceError, match=r"not a TIFF \(PNG\)"):
        read_metadata(path)

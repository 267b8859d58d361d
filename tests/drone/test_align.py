"""Phase correlation and band alignment against known shifts and affine maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from agrivision.drone.align import align_bands, fit_affine, phase_correlation, undistort
from agrivision.errors import BandNotFoundError


def _texture(shape=(256, 320), seed=0) -> np.ndarray:
    return ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 2.0)


def _fourier_shift(img: np.ndarray, shift) -> np.ndarray:
    return np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(img), shift)).real


@pytest.mark.parametrize("shift", [(0.0, 0.0), (5.3, -7.6), (-12.35, 3.9), (0.5, 0.25)])
def test_phase_correlation_finds_subpixel_shifts(shift):
    a = _texture((512, 640))
    b = _fourier_shift(a, shift)
    sl = (slice(100, 356), slice(100, 420))  # a window: no wrap-around at the borders
    dr, dc, peak = phase_correlation(a[sl], b[sl])
    assert (dr, dc) == pytest.approx(shift, abs=0.051)
    assert peak > 0.3


def test_phase_correlation_of_unrelated_images_has_a_low_peak():
    *_, peak = phase_correlation(_texture(seed=1), _texture(seed=2))
    assert peak < 0.1


def test_fit_affine_recovers_a_known_map_and_rejects_an_outlier():
    truth = np.array([[1.01, 0.02, 3.0], [-0.015, 0.99, -2.0]])
    centres = np.array([(r, c) for r in (30, 90, 150, 210) for c in (40, 120, 200, 280)], float)
    src = np.column_stack([centres, np.ones(len(centres))]) @ truth.T
    shifts = np.column_stack([centres, src - centres, np.ones(len(centres))])
    shifts[5, 2] += 15  # one tile matched the wrong tree row
    np.testing.assert_allclose(fit_affine(shifts), truth, atol=1e-9)


def test_align_bands_undoes_rotation_scale_and_shift_across_contrast_inversion():
    ref = _texture()
    matrix = np.array([[np.cos(0.01), -np.sin(0.01), 4.2], [np.sin(0.01), np.cos(0.01), -6.7]])
    # moving(p) = ref(M^-1 p): aligning must find M (src = M @ ref pixel).
    inv = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    moving = ndimage.affine_transform(ref, inv[:, :2], offset=inv[:, 2], order=3, mode="nearest")
    aligned, report = align_bands({"red": ref, "nir": 1.0 - 3.0 * moving}, "red")
    corners = np.array([[0, 0, 1], [0, 319, 1], [255, 0, 1], [255, 319, 1]], float)
    # Where each corner maps: within 0.15 px (the estimator's grid is 1/20 px).
    np.testing.assert_allclose(corners @ report["nir"].matrix.T, corners @ matrix.T, atol=0.15)
    assert report["nir"].residual_median_px < 0.1 and report["red"].residual_max_px == 0
    inner = (slice(20, -20), slice(20, -20))
    recovered = (1.0 - aligned["nir"][inner]) / 3.0
    err = np.abs(recovered - ref[inner]) / np.ptp(ref)
    assert np.nanmax(err) < 0.05 and np.nanmedian(err) < 0.005  # bilinear resampling
    assert np.isnan(aligned["nir"]).any()  # pixels mapped from outside the frame


def test_translation_only_alignment():
    ref = _texture()
    _, report = align_bands(
        {"a": ref, "b": ndimage.shift(ref, (2.0, -3.0), order=1)}, "a", affine=False
    )
    np.testing.assert_allclose(report["b"].matrix[:, :2], np.eye(2))
    np.testing.assert_allclose(report["b"].shift, (2.0, -3.0), atol=0.1)


def test_unknown_reference_band():
    with pytest.raises(BandNotFoundError, match="reference band"):
        align_bands({"red": _texture()}, "nir")


def test_undistort_identity_and_radial_mapping():
    img = _texture((120, 160))
    same = undistort(
        img,
        focal_px=200.0,
        principal_px=(80.0, 60.0),
        distortion=(0,) * 5,
        target_focal_px=200.0,
        target_principal_px=(80.0, 60.0),
    )
    np.testing.assert_allclose(same, img, atol=1e-6)
    # One bright pixel at distorted radius r_d = r (1 + k1 r^2) appears at radius r after.
    k1, f, cx, cy = -0.2, 100.0, 80.0, 60.0
    x_u = 0.5  # normalised undistorted x; distorted x = 0.5 * (1 - 0.2 * 0.25) = 0.475
    spot = np.zeros((120, 160), np.float32)
    spot[60, round(cx + f * x_u * (1 + k1 * x_u**2))] = 1.0
    out = undistort(
        spot,
        focal_px=f,
        principal_px=(cx, cy),
        distortion=(k1, 0, 0, 0, 0),
        target_focal_px=f,
        target_principal_px=(cx, cy),
    )
    assert np.nanargmax(out[60]) == pytest.approx(cx + f * x_u, abs=1)

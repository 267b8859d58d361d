"""Counter-based noise: pure functions of (seed, stream, row, col)."""

from __future__ import annotations

import numpy as np

from agrivision.synthetic.noise import fbm, hash64, uniform, uniform16, value_noise


def test_hash_is_a_function_of_its_key_only():
    rows, cols = np.arange(50)[:, None], np.arange(70)[None, :]
    full = hash64(3, 1, rows, cols)
    np.testing.assert_array_equal(full[10:20, 5:9], hash64(3, 1, rows[10:20], cols[:, 5:9]))
    assert hash64(3, 1, 7, 9) == full[7, 9]
    assert (hash64(4, 1, rows, cols) != full).mean() > 0.99  # another seed
    assert (hash64(3, 2, rows, cols) != full).mean() > 0.99  # another stream


def test_uniform_values_are_uniform():
    u = uniform(0, 0, np.arange(1000)[:, None], np.arange(1000)[None, :])
    assert u.min() >= 0 and u.max() < 1
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    # Chi-square with 9 degrees of freedom: 27.9 is the 0.999 quantile.
    chi2 = ((counts - 1e5) ** 2 / 1e5).sum()
    assert chi2 < 27.9
    # Neighbouring counters must not correlate.
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.01
    bands = uniform16(0, 5, np.arange(200)[:, None], np.arange(200)[None, :], 11)
    assert bands.shape == (11, 200, 200) and bands.dtype == np.float32
    assert abs(np.corrcoef(bands[0].ravel(), bands[10].ravel())[0, 1]) < 0.02
    assert abs(bands.mean() - 0.5) < 0.005


def test_value_noise_is_window_independent_smooth_and_bounded():
    rows, cols = np.arange(300, 556), np.arange(-40, 216)
    full = value_noise(1, 2, rows, cols, 16.0)
    part = value_noise(1, 2, rows[37:101], cols[130:200], 16.0)
    np.testing.assert_array_equal(full[37:101, 130:200], part)
    assert full.min() >= 0 and full.max() <= 1 and full.dtype == np.float32
    # Smooth: neighbour differences are far below those of white noise (~0.41 mean).
    assert np.abs(np.diff(full, axis=1)).mean() < 0.05
    # Lattice nodes take the hashed values exactly.
    assert full[(320 - 300), (0 + 40)] == np.float32(uniform(1, 2, 20, 0))


def test_fbm_of_shifted_coordinates_is_a_shifted_field():
    rows, cols = np.arange(100), np.arange(120)
    base = fbm(0, 9, rows, cols, [40.0, 10.0])
    shifted = fbm(0, 9, rows + 10, cols + 20, [40.0, 10.0])
    np.testing.assert_array_equal(base[10:, 20:], shifted[:-10, :-20])

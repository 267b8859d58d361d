"""The fused normalized-difference kernel equals the generic numpy path, NaN for NaN."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from agrivision.indices import compute, evaluation, index_info
from agrivision.indices import fused as fused_module
from agrivision.indices.evaluation import _block


def _generic(a, b):
    return _block(a, b, formula=index_info("NDVI").compiled, symbols=["N", "R"], values={})


def _awkward(rng, shape):
    a = rng.uniform(-0.2, 1.0, shape).astype(np.float32)
    b = rng.uniform(-0.2, 1.0, shape).astype(np.float32)
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    flat_a[:6] = [np.nan, 0.0, 0.3, np.inf, -0.3, 1e-38]
    flat_b[:6] = [0.2, 0.0, -0.3, 0.1, 0.3, -1e-38]
    return a, b


def test_kernel_is_bitwise_equal_to_numpy_including_nan_cases():
    a, b = _awkward(np.random.default_rng(0), (64, 50))
    got = fused_module.normalized_difference(a, b)
    want = _generic(a, b)
    assert got.dtype == np.float32 and got.shape == a.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here; values bit-identical
    assert np.isnan(got.reshape(-1)[:5]).all()  # NaN in, 0/0, x/0 (twice), inf/inf
    assert not np.isinf(got).any()


def test_compute_fused_and_generic_paths_agree(make_scene, monkeypatch):
    rng = np.random.default_rng(3)
    red, nir = _awkward(rng, (2, 9, 11))
    scene = make_scene({"red": red, "nir": nir, "green": nir[::-1]}, chunks=(1, 4, 5))
    names = ["NDVI", "GNDVI", "NDWI"]
    calls = _spy(monkeypatch)
    monkeypatch.setattr(evaluation, "FUSED_MIN_PIXELS", 0)
    fast = compute(scene, names).compute()
    assert len(calls) == 3 * 2 * 3 * 3  # indices x time x row chunks x column chunks
    monkeypatch.setattr(evaluation, "FUSED", False)
    slow = compute(scene, names).compute()
    assert len(calls) == 54  # no more kernel calls
    for name in names:
        np.testing.assert_array_equal(fast[name].values, slow[name].values)


def test_small_outputs_skip_the_kernel(make_scene, monkeypatch):
    calls = _spy(monkeypatch)
    scene = make_scene({"red": np.full((4, 4), 0.1), "nir": np.full((4, 4), 0.5)})
    np.testing.assert_allclose(compute(scene, "NDVI").NDVI.values, 0.4 / 0.6)
    assert calls == []  # not worth loading the compiled kernel


def _spy(monkeypatch) -> list:
    calls = []
    kernel = fused_module.normalized_difference

    def counting(a, b):
        calls.append(a.shape)
        return kernel(a, b)

    monkeypatch.setattr(fused_module, "normalized_difference", counting)
    return calls


def test_unequal_block_shapes_fall_back():
    assert fused_module.normalized_difference(np.ones((2, 3)), np.ones((1, 3))) is None


def test_importing_indices_does_not_import_numba():
    code = "import sys, agrivision.indices; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

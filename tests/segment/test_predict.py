"""Whole-scene blended inference: references, chunking invariance, nodata, laziness, memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F

from agrivision.errors import BandNotFoundError, ConfigError
from agrivision.segment.predict import _ramp, segment, write_predictions
from agrivision.segment.prepare import normalise

RNG = np.random.default_rng(42)


def _reference(seg, data: np.ndarray) -> np.ndarray:
    """Probabilities of a scene that is exactly one window: the model by hand."""
    x = torch.from_numpy(data.astype(np.float32))
    f = seg.spec.downsample
    if f > 1:  # scene sides are multiples of f here: plain block means
        x = F.avg_pool2d(x[None], f)[0]
    x = normalise(x, seg.meta.normalisation.mean, seg.meta.normalisation.std)
    with torch.inference_mode():
        p = torch.softmax(seg.model(x[None]), dim=1)
    if f > 1:
        p = F.interpolate(p, scale_factor=f, mode="bilinear", align_corners=False)
    return p[0].numpy()


@pytest.mark.parametrize("downsample", [1, 2])
@pytest.mark.parametrize("cols", [64, 160])
def test_one_window_scene_equals_the_model_by_hand(tiny, scene_of, downsample, cols):
    # a 64 x 160 scene is one window sized to it (160 exceeds the model's own 64-px window)
    seg = tiny(downsample=downsample)
    data = RNG.random((2, 64 * downsample, cols * downsample))
    out = segment(scene_of(data, ("red", "nir")), seg, probabilities=True).compute()
    ref = _reference(seg, data)
    np.testing.assert_array_equal(out["classes"].values, ref.argmax(0))
    np.testing.assert_allclose(out["probabilities"].values / 254, ref, atol=0.5 / 254 + 1e-6)


@pytest.mark.parametrize("overlap", [8, 16, 0])
def test_ramp_weights_of_neighbouring_windows_sum_to_one(overlap):
    w = _ramp((64, 64), overlap, torch.device("cpu"))[32]  # a middle row: the 1-D ramp
    stride = 64 - overlap
    # across the overlap, the falling ramp of one window and the rising ramp of the next add to 1
    torch.testing.assert_close(w[stride:] + w[:overlap], torch.ones(overlap))
    assert w.min() > 0 and w.max() == 1


@pytest.mark.parametrize("downsample", [1, 2, 3])
def test_predictions_do_not_depend_on_the_chunking(tiny, scene_of, downsample):
    seg = tiny(downsample=downsample)
    data = RNG.random((2, 203, 171)).astype(np.float32)
    data[:, 20:30, 40:90] = np.nan
    scene = scene_of(data, ("red", "nir")).chunk(64)
    runs = [
        segment(scene, seg, probabilities=True, chunks=c).compute() for c in (None, 45, 100, 4096)
    ]
    first = runs[0]
    for other in runs[1:]:
        agree = (other["classes"].values == first["classes"].values).mean()
        assert agree >= 0.999
        diff = np.abs(other["probabilities"].values.astype(int) - first["probabilities"].values)
        assert diff.max() <= 1


def test_nodata_stays_nodata(tiny, scene_of):
    seg = tiny()
    data = RNG.random((2, 80, 90)).astype(np.float32)
    data[0, 10:20, 10:30] = np.nan  # one band missing is enough
    data[:, 50:, 60:] = np.nan
    out = segment(scene_of(data, ("red", "nir")), seg, probabilities=True).compute()
    nodata = ~np.isfinite(data).all(axis=0)
    assert (out["classes"].values[nodata] == 255).all()
    assert (out["classes"].values[~nodata] < 3).all()
    assert (out["probabilities"].values[:, nodata] == 255).all()
    sums = out["probabilities"].values[:, ~nodata].astype(int).sum(axis=0)
    assert np.abs(sums - 254).max() <= 2  # quantised probabilities still sum to ~1


def test_result_is_lazy_and_on_the_scene_grid(tiny, scene_of):
    import dask

    seg = tiny()
    computed = []

    def record(dsk, keys, **kwargs):  # a dask scheduler that only records being asked
        computed.append(keys)
        return dask.get(dsk, keys, **kwargs)

    scene = scene_of(RNG.random((2, 100, 120)), ("red", "nir")).chunk(50)
    with dask.config.set(scheduler=record):
        out = segment(scene, seg, probabilities=True)
        assert not computed
        out["classes"].compute()
        assert computed
    assert out["classes"].dtype == np.uint8 and out["probabilities"].dims == ("class", "y", "x")
    np.testing.assert_array_equal(out["y"], scene["y"])
    assert out.rio.crs == scene.rio.crs


def test_time_series_are_segmented_per_date(tiny, scene_of):
    import xarray as xr

    seg = tiny()
    data = RNG.random((2, 2, 70, 70)).astype(np.float32)
    scenes = [scene_of(data[t], ("red", "nir")) for t in range(2)]
    series = xr.concat(scenes, dim="time").assign_coords(time=[0, 1])
    out = segment(series, seg).compute()
    assert out["classes"].dims == ("time", "y", "x")
    for t in range(2):
        single = segment(scenes[t], seg).compute()
        np.testing.assert_array_equal(out["classes"].values[t], single["classes"].values)


def test_missing_bands_and_bad_options(tiny, scene_of):
    seg = tiny(bands=("red", "nir", "swir16"))
    scene = scene_of(RNG.random((2, 64, 64)), ("red", "nir"))
    with pytest.raises(BandNotFoundError, match=r"\['swir16'\]"):
        segment(scene, seg)
    seg = tiny()
    with pytest.raises(ConfigError, match="overlap"):
        segment(scene, seg, overlap=64)
    with pytest.raises(ConfigError, match="device"):
        segment(scene, seg, device="tpu")


def test_written_geotiffs(tmp_path, tiny, scene_of):
    seg = tiny()
    data = RNG.random((2, 70, 80)).astype(np.float32)
    data[:, :5, :5] = np.nan
    result = segment(scene_of(data, ("red", "nir")), seg, probabilities=True)
    written = write_predictions(result, tmp_path / "classes.tif", tmp_path / "probs.tif")
    expected = result.compute()
    with rasterio.open(written[0]) as src:
        np.testing.assert_array_equal(src.read(1), expected["classes"].values)
        assert src.nodata == 255 and src.crs.to_epsg() == 32633
        assert src.transform == expected.rio.transform()
    with rasterio.open(written[1]) as src:
        np.testing.assert_array_equal(src.read(), expected["probabilities"].values)
        assert src.descriptions == ("a", "b", "c")
    with pytest.raises(ConfigError, match="no probabilities"):
        write_predictions(
            segment(scene_of(data, ("red", "nir")), seg), tmp_path / "c.tif", tmp_path / "p.tif"
        )


MEMORY_SCRIPT = """
import os, resource, sys
import dask.array as da, numpy as np, rioxarray, xarray as xr
sys.path.insert(0, {tests!r})
from conftest import tiny_segmenter
from agrivision.segment.predict import segment, write_predictions

bands = tuple(f"b{{i}}" for i in range(32))
seg = tiny_segmenter(bands=bands, window=32)
# 32 bands x 2048 x 512 float32 = 128 MiB, generated chunk by chunk when asked for
arr = da.random.default_rng(0).random((32, 2048, 512), chunks=(1, 64, 512), dtype=np.float32)
scene = xr.Dataset(
    {{b: (("y", "x"), arr[i]) for i, b in enumerate(bands)}},
    coords={{"y": np.arange(2048)[::-1] * 10.0, "x": np.arange(512) * 10.0}},
).rio.write_crs("EPSG:32633")
# The halo is one window deep: windows of the model's own 32 px keep each task small.
write_predictions(segment(scene.isel(y=slice(0, 384)), seg, chunks=128, window=32), {out!r})

def data_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmData"):
            return int(line.split()[1]) * 1024

# From here on the process may allocate only 64 MiB more: half of the scene.
resource.setrlimit(resource.RLIMIT_DATA, (data_bytes() + 64 * 2**20, resource.RLIM_INFINITY))
write_predictions(segment(scene, seg, chunks=128, window=32), {out!r})
print("segmented")
try:
    arr.compute()
except MemoryError:
    print("materialising the scene fails")
"""


@pytest.mark.slow
def test_a_scene_larger_than_the_memory_budget_is_processed(tmp_path):
    # RLIMIT_DATA caps heap and anonymous mappings; two malloc arenas keep reservations small.
    script = MEMORY_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path / "c.tif"))
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    # the budget is real: the scene itself does not fit, the segmentation does
    assert run.stdout.split("\n")[:2] == ["segmented", "materialising the scene fails"]
    with rasterio.open(tmp_path / "c.tif") as src:
        assert src.shape == (2048, 512)
        assert set(np.unique(src.read(1))) <= {0, 1, 2}


def test_bf16_on_the_cpu_is_opt_in_and_close_to_fp32(tiny, scene_of):
    seg = tiny()
    scene = scene_of(RNG.random((2, 64, 64)).astype(np.float32), ("red", "nir"))
    fp32 = segment(scene, seg, probabilities=True, device="cpu").compute()
    auto = segment(scene, seg, probabilities=True, device="cpu", precision="auto").compute()
    bf16 = segment(scene, seg, probabilities=True, device="cpu", precision="bf16").compute()
    np.testing.assert_array_equal(auto["probabilities"].values, fp32["probabilities"].values)
    diff = np.abs(bf16["probabilities"].values.astype(int) - fp32["probabilities"].values)
    assert 0 < diff.max() <= 25  # bf16 keeps 8 bits of mantissa: a few percent at most
    with pytest.raises(ConfigError, match="precision"):
        segment(scene, seg, precision="fp16")

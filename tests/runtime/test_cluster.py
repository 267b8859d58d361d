"""``agrivision report --scheduler`` on a real cluster (scheduler + two worker processes on
127.0.0.1) gives the same outputs as the local scheduler, also when a worker is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
from runtime.blockfuncs import fail_at, slow_double

from agrivision.io.blocks import store_blocks

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SAME_BYTES = ("fields.csv", "fields_timeseries.csv", "fields.geojson", "problems.geojson",
              "zones.geojson")  # fmt: skip
RASTERS = ("indices.tif", "classes.tif")


def assert_same_outputs(ours: Path, reference: Path) -> None:
    """Same tables and vectors byte for byte, same raster pixels and metadata."""
    for name in SAME_BYTES:
        assert (ours / name).read_bytes() == (reference / name).read_bytes(), name
    for name in RASTERS:
        with rasterio.open(ours / name) as a, rasterio.open(reference / name) as b:
            assert {**a.profile, "nodata": str(a.nodata)} == {**b.profile, "nodata": str(b.nodata)}
            assert a.tags() == b.tags() and a.descriptions == b.descriptions, name
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=name)
    counts = ("fields", "problem_polygons", "zones")
    ours_summary = json.loads((ours / "summary.json").read_text())
    reference_summary = json.loads((reference / "summary.json").read_text())
    assert {k: ours_summary[k] for k in counts} == {k: reference_summary[k] for k in counts}


class ClientSideTarget:
    """A block target that must stay in this process: pickling it (to send it to a worker)
    fails. Records, at every write, how many futures the client holds."""

    def __init__(self, shape, client, on_write=None):
        self.array = np.full(shape, -1, np.int64)
        self.client = client
        self.held: list[int] = []
        self.writes = 0
        self.on_write = on_write

    def __setitem__(self, key, value):
        assert (self.array[key] == -1).all(), "a block was written twice"
        self.array[key] = value
        self.held.append(len(self.client.futures))
        self.writes += 1
        if self.on_write is not None:
            self.on_write(self.writes)

    def __reduce__(self):
        raise TypeError("this target holds a local file handle; it cannot travel")


def test_store_blocks_on_cluster_writes_in_the_client(cluster):
    from distributed import Client

    expected = np.arange(2 * 40 * 30).reshape(2, 40, 30)
    source = da.from_array(expected, chunks=(1, 10, 10)).map_blocks(slow_double, 0.01)
    with Client(cluster.address) as client:
        target = ClientSideTarget(expected.shape, client)
        store_blocks([source], [target], max_in_flight=3)
        assert target.writes == 2 * 4 * 3
        np.testing.assert_array_equal(target.array, expected * 2)
        assert max(target.held) <= 3  # the writer's bound on blocks held for it
        assert _eventually(lambda: not client.futures)  # all released (asynchronously)


def test_store_blocks_on_cluster_into_regions(cluster):
    """Two strips of rows written into their regions of one target, as a striped writer does."""
    from distributed import Client

    expected = np.arange(2 * 40 * 30).reshape(2, 40, 30)
    source = da.from_array(expected, chunks=(1, 10, 10))
    with Client(cluster.address) as client:
        target = ClientSideTarget(expected.shape, client)
        strips = [source[:, :20], source[:, 20:]]
        regions = [(slice(None), slice(0, 20)), (slice(None), slice(20, 40))]
        store_blocks(strips, [target, target], regions=regions, max_in_flight=3)
    np.testing.assert_array_equal(target.array, expected)
    assert target.writes == 2 * 4 * 3


def test_store_blocks_on_cluster_raises_the_task_error(cluster):
    from distributed import Client

    source = da.zeros((30, 30), chunks=10, dtype=np.int64).map_blocks(
        fail_at, (1, 1), dtype=np.int64
    )
    with Client(cluster.address) as client:
        with pytest.raises(ValueError, match=r"bad block \(1, 1\)"):
            store_blocks([source], [ClientSideTarget((30, 30), client)], max_in_flight=2)
        # The others were cancelled; only the failed block's future (in the traceback) remains.
        states = [state.status for state in client.futures.values()]
        assert states in ([], ["error"])


def test_store_blocks_survives_a_killed_worker(cluster):
    """Kill the worker that computes blocks after a few writes: every block is still written
    once, with the right values (the nanny restarts the worker, dask recomputes)."""
    from distributed import Client

    expected = np.arange(60 * 40).reshape(60, 40)
    source = da.from_array(expected, chunks=10).map_blocks(slow_double, 0.2)
    with Client(cluster.address) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        killed = []

        def kill_once(writes: int) -> None:
            if not killed and writes >= 4 and client.processing(workers=[victim])[victim]:
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(victim)

        target = ClientSideTarget(expected.shape, client, on_write=kill_once)
        store_blocks([source], [target], max_in_flight=4)
        assert killed, "the victim never had a task after the 4th block was written"
        assert target.writes == 6 * 4
        np.testing.assert_array_equal(target.array, expected * 2)
        client.wait_for_workers(2, timeout=90)  # the nanny restarted it, for the next tests


def _eventually(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_report_on_cluster_equals_local(cluster, report_case, tmp_path):
    out = tmp_path / "cluster"
    done = report_case.run(out, "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr[-3000:] + cluster.log_tail()
    assert_same_outputs(out, report_case.local)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["runtime"]["scheduler"] == cluster.address


def test_report_survives_a_killed_worker(cluster, report_case, tmp_path):
    """SIGKILL one worker while it computes blocks of the raster outputs; its nanny restarts
    it, dask recomputes what was lost and the report is identical to the local one."""
    from distributed import Client

    out = tmp_path / "cluster"
    # The address comes from the environment here, as on a user's cluster deployment.
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": cluster.address}
    proc = subprocess.Popen(
        report_case.command(out, "--log-level", "info"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    writing = threading.Event()
    stderr: list[str] = []

    def follow() -> None:  # the run logs "stage <name> ..." when each stage starts
        for line in proc.stderr:
            stderr.append(line)
            if "stage write rasters" in line:
                writing.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        with Client(cluster.address, timeout="30s") as client:
            pids = client.run(os.getpid)
            victim = sorted(pids)[0]
            assert writing.wait(120), "".join(stderr)[-3000:]
            deadline = time.monotonic() + 60
            while not client.processing(workers=[victim])[victim]:
                assert proc.poll() is None, "the report ended before the victim got a task"
                assert time.monotonic() < deadline, "the victim never got a task"
                time.sleep(0.01)
            os.kill(pids[victim], signal.SIGKILL)
            proc.wait(240)
            reader.join(10)
            assert proc.returncode == 0, "".join(stderr)[-3000:] + cluster.log_tail()
            # The nanny brought the worker back: the cluster is whole for later tests.
            client.wait_for_workers(2, timeout=90)
            assert pids[victim] not in client.run(os.getpid).values()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_same_outputs(out, report_case.local)


def _tiny_checkpoint(path: Path) -> Path:
    """A randomly initialised tiny U-Net (red, nir; 64 px windows) saved as a checkpoint."""
    import torch

    from agrivision.segment.checkpoint import CheckpointMeta, Normalisation, save_checkpoint
    from agrivision.segment.model import ModelSpec, build_model

    torch.manual_seed(0)
    spec = ModelSpec(encoder="tu-mobilenetv3_small_050", encoder_depth=3,
                     decoder_channels=(16, 8, 8), bands=("red", "nir"), classes=("a", "b", "c"),
                     window=64)  # fmt: skip
    meta = CheckpointMeta(spec=spec, normalisation=Normalisation(mean=(0.2, 0.3), std=(0.1, 0.1)))
    save_checkpoint(build_model(spec).eval(), meta, path)
    return path


def test_segment_loads_the_model_once_per_worker(cluster, tmp_path):
    """The task graph names the checkpoint (it does not carry the weights); each worker loads
    it once and reuses it for all its chunks; the classes equal a local run's."""
    import cloudpickle
    import xarray as xr
    from distributed import Client
    from runtime.blockfuncs import checkpoint_loads, count_checkpoint_loads

    from agrivision.segment.predict import segment

    model = _tiny_checkpoint(tmp_path / "model")
    weights = sum(f.stat().st_size for f in model.iterdir())
    # Lazy random values: the graph then holds seeds, not pixels.
    values = da.random.RandomState(1).uniform(0.0, 0.6, (2, 256, 256), chunks=64)
    values = values.astype(np.float32)
    scene = xr.Dataset(
        {b: (("y", "x"), values[i]) for i, b in enumerate(("red", "nir"))},
        coords={"y": 5800000 - 10 * np.arange(256), "x": 500000 + 10 * np.arange(256)},
    ).rio.write_crs("EPSG:32633")
    classes = segment(scene, model, device="cpu", chunks=64)["classes"]  # 16 chunks
    graph = dict(classes.data.__dask_graph__())
    assert len(cloudpickle.dumps(graph)) < weights / 4  # the weights do not travel
    local = classes.compute(scheduler="threads")
    with Client(cluster.address) as client:
        client.wait_for_workers(2, timeout=90)
        client.run(count_checkpoint_loads)
        distributed_result = classes.compute()
        loads = client.run(checkpoint_loads)
    np.testing.assert_array_equal(distributed_result.values, local.values)
    assert all(n <= 1 for n in loads.values()), loads  # never reloaded per task
    assert sum(loads.values()) >= 1, loads


def test_segment_cli_on_cluster_writes_the_classes(cluster, tmp_path):
    import rasterio as rio
    from rasterio.transform import from_origin

    from agrivision.cli import main

    model = _tiny_checkpoint(tmp_path / "model")
    image = tmp_path / "scene.tif"
    values = np.random.default_rng(2).uniform(0.0, 0.6, (2, 192, 192)).astype(np.float32)
    with rio.open(image, "w", driver="GTiff", width=192, height=192, count=2, dtype="float32",
                  crs="EPSG:32633", transform=from_origin(500000, 5800000, 10, 10)) as dst:  # fmt: skip
        dst.write(values)
        dst.descriptions = ("red", "nir")
    args = [str(image), "--bands", "red,nir", "--model", str(model), "--device", "cpu",
            "--chunks", "64"]  # fmt: skip
    assert main(["segment", *args, "-o", str(tmp_path / "local.tif")]) == 0
    code = main(["segment", *args, "-o", str(tmp_path / "cluster.tif"),
                 "--scheduler", cluster.address])  # fmt: skip
    assert code == 0
    with rio.open(tmp_path / "local.tif") as a, rio.open(tmp_path / "cluster.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())

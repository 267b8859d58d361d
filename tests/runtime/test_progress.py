"""The progress display on a dask.distributed cluster (``compute_context(progress=True)``)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading

import dask.array as da
import numpy as np
import pytest
from runtime.blockfuncs import slow_double

from agrivision.runtime import compute_context, progress

EXPECTED = np.arange(400).reshape(20, 20)


@pytest.fixture(scope="module")
def address():
    """An in-process cluster: one worker, two threads (starts in well under a second)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def eager_bar(monkeypatch):
    """Draw from the first poll and poll often, so that a short computation shows its bar."""
    monkeypatch.setattr(progress, "PROGRESS_MINIMUM_S", 0.0)
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.05)


def _work() -> da.Array:
    # 16 blocks of 50 ms on two threads: about 0.4 s, several redraws. Fresh keys each time
    # (name=False): results of an earlier call still held by the cluster are not reused.
    return da.from_array(EXPECTED, chunks=5, name=False).map_blocks(slow_double, 0.05)


def _assert_nothing_left(address: str) -> None:
    from distributed import Client

    assert not [t.name for t in threading.enumerate() if t.name.startswith("agrivision-progress")]
    with Client(address) as client:
        names = client.run_on_scheduler(
            lambda dask_scheduler: [*dask_scheduler.plugins, *dask_scheduler.handlers]
        )
    assert not [name for name in names if name.startswith("agrivision-progress")]


def test_progress_is_drawn_on_stderr_while_the_cluster_computes(address, eager_bar, capsys):
    with compute_context(address, progress=True) as client:
        assert client is not None
        result = _work().compute()
    np.testing.assert_array_equal(result, EXPECTED * 2)
    captured = capsys.readouterr()
    assert captured.out == ""
    draws = re.findall(r"\r\[[# ]{40}\] \| (\d+)% Completed \| (\d+)/(\d+) tasks \| ", captured.err)
    assert len(draws) >= 2, captured.err
    percents = [int(p) for p, _, _ in draws]
    assert percents == sorted(percents) and percents[0] < 100 and percents[-1] == 100
    _, done, total = draws[-1]
    assert done == total and int(total) >= 16  # at least the 16 blocks of this client
    assert captured.err.endswith("\n")
    _assert_nothing_left(address)


def test_quiet_draws_nothing(address, eager_bar, capsys):
    with compute_context(address, progress=False):
        np.testing.assert_array_equal(_work().compute(), EXPECTED * 2)
    assert "Completed" not in capsys.readouterr().err
    _assert_nothing_left(address)


def test_another_clients_tasks_are_not_counted(address, eager_bar, capsys):
    from distributed import Client

    def totals() -> set[int]:
        return {int(t) for t in re.findall(r"\d+/(\d+) tasks", capsys.readouterr().err)}

    with compute_context(address, progress=True):
        _work().compute()
    alone = totals()
    # Not `with Client(...)`: that would make it the client that dask.compute uses here.
    other = Client(address, set_as_default=False)
    try:
        with compute_context(address, progress=True) as ours:
            assert ours is not other
            # Submitted while the display runs: 60 tasks on the same worker, not ours.
            busy = other.compute(da.ones(30, chunks=1).map_blocks(slow_double, 0.01).sum())
            np.testing.assert_array_equal(_work().compute(), EXPECTED * 2)
            assert busy.result() == 60
    finally:
        other.close()
    assert len(alone) == 1 and totals() == alone


def test_a_failing_display_never_breaks_the_computation(address, eager_bar, monkeypatch, caplog):
    def lost(self):
        raise OSError("connection to the scheduler lost")

    monkeypatch.setattr(progress.ClusterProgress, "_poll", lost)
    with compute_context(address, progress=True):
        np.testing.assert_array_equal(_work().compute(), EXPECTED * 2)
    _assert_nothing_left(address)

    def refused(client_id, name):
        raise TypeError("pickled plugins are disabled")

    monkeypatch.setattr(progress, "_task_counter", refused)
    with caplog.at_level(logging.WARNING, logger="agrivision.runtime"):
        with compute_context(address, progress=True):
            np.testing.assert_array_equal(_work().compute(), EXPECTED * 2)
    assert "no progress display on the cluster (TypeError: pickled plugins" in caplog.text
    _assert_nothing_left(address)


def test_the_scheduler_needs_no_agrivision():
    """The plugin travels by value: it unpickles where agrivision cannot be imported."""
    import cloudpickle

    blob = cloudpickle.dumps(progress._task_counter("client-1", "agrivision-progress-x"))
    code = (
        "import pickle, sys; sys.modules['agrivision'] = None; "
        "plugin = pickle.loads(sys.stdin.buffer.read()); "
        "print(type(plugin).__name__, plugin.client_id, plugin.counts())"
    )
    done = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "TaskCounter client-1 (0, 0)"


def test_the_plugin_leaves_when_its_client_disconnects(address):
    """A client that vanishes without cleaning up (a killed process) leaves nothing behind."""
    from distributed import Client

    with Client(address) as client:
        client.register_plugin(progress._task_counter(client.id, "agrivision-progress-orphan"),
                               name="agrivision-progress-orphan")  # fmt: skip
    _assert_nothing_left(address)


def test_the_local_scheduler_draws_on_stderr_too(eager_bar, capsys):
    with compute_context(progress=True) as client:
        assert client is None
        np.testing.assert_array_equal(_work().compute(), EXPECTED * 2)
    captured = capsys.readouterr()
    assert captured.out == "" and "100% Completed" in captured.err

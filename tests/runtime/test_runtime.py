"""Scheduler choice (``compute_context``, ``active_client``), the CLI's ``--scheduler`` and
``store_blocks`` on the local schedulers."""

from __future__ import annotations

import threading
from typing import ClassVar

import dask
import dask.array as da
import distributed
import numpy as np
import pytest
from click.testing import CliRunner
from rasters import write_tif

from agrivision.cli import cli, main
from agrivision.errors import AgrivisionError
from agrivision.io.blocks import store_blocks
from agrivision.runtime import active_client, compute_context

COMPUTING_COMMANDS = (
    "info", "indices", "stats", "classify", "vectorize", "zones", "report", "segment",
)  # fmt: skip


class UnreachableClient:
    """Stands in for ``distributed.Client``: records the address, then fails to connect."""

    addresses: ClassVar[list[str]] = []

    def __init__(self, address: str, **kwargs) -> None:
        UnreachableClient.addresses.append(address)
        raise OSError("connection refused")


@pytest.fixture
def unreachable(monkeypatch) -> list[str]:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setattr(distributed, "Client", UnreachableClient)
    UnreachableClient.addresses = []
    return UnreachableClient.addresses


def test_local_threads_without_an_address(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with compute_context() as client:
        assert client is None
        assert dask.config.get("scheduler") == "threads"
        assert active_client() is None
        assert da.ones(10, chunks=3).sum().compute() == 10


def test_address_from_argument_then_environment(unreachable, monkeypatch):
    with pytest.raises(AgrivisionError, match=r"tcp://given:1 .*start it with `dask scheduler`"):
        with compute_context("tcp://given:1"):
            pass
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://from-env:2")
    with pytest.raises(AgrivisionError, match="tcp://from-env:2"):
        with compute_context():
            pass
    with pytest.raises(AgrivisionError):
        with compute_context("tcp://wins:3"):
            pass
    assert unreachable == ["tcp://given:1", "tcp://from-env:2", "tcp://wins:3"]


@pytest.mark.parametrize("command", COMPUTING_COMMANDS)
def test_every_computing_command_takes_a_scheduler(command):
    text = CliRunner().invoke(cli, [command, "--help"]).output
    assert "--scheduler" in text and "--workers" in text


def test_cli_connects_to_the_named_scheduler(unreachable, tmp_path, capsys):
    """The option reaches compute_context: the CLI tries that address and fails in one line."""
    tif = write_tif(tmp_path / "s.tif", np.ones((4, 8, 8), np.uint16) * 2000,
                    descriptions=["blue", "green", "red", "nir"])  # fmt: skip
    code = main(["info", str(tif), "--scheduler", "tcp://127.0.0.9:1"])
    assert code == 2
    assert unreachable == ["tcp://127.0.0.9:1"]
    err = capsys.readouterr().err.strip()
    assert err.startswith("agrivision: error: cannot reach dask scheduler at tcp://127.0.0.9:1")
    assert "\n" not in err


class Recorder:
    """A block target that keeps what it is given (and the thread that gave it)."""

    def __init__(self, shape):
        self.array = np.zeros(shape, np.int64)
        self.writes: list[tuple[tuple[slice, ...], str]] = []

    def __setitem__(self, key, value):
        self.array[key] = value
        self.writes.append((key, threading.current_thread().name))


def test_store_blocks_locally_is_dask_store():
    expected = np.arange(7 * 10 * 9).reshape(7, 10, 9)
    sources = [da.from_array(expected, chunks=(3, 4, 5)), da.from_array(-expected, chunks=5)]
    targets = [Recorder(expected.shape), Recorder(expected.shape)]
    with compute_context():
        store_blocks(sources, targets)
    np.testing.assert_array_equal(targets[0].array, expected)
    np.testing.assert_array_equal(targets[1].array, -expected)
    assert len(targets[0].writes) == 3 * 3 * 2  # one write per block, each exactly once
    assert len({str(k) for k, _ in targets[0].writes}) == 18


def test_store_blocks_into_regions_locally():
    target = Recorder((2, 9, 5))
    with compute_context():
        store_blocks([da.ones((2, 4, 5), chunks=2, dtype=np.int64)], [target],
                     regions=[(slice(None), slice(3, 7))])  # fmt: skip
    np.testing.assert_array_equal(target.array.sum(axis=(0, 2)), [0, 0, 0, 10, 10, 10, 10, 0, 0])


def test_store_blocks_needs_one_target_per_source():
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        store_blocks([da.ones(2), da.ones(2)], [np.zeros(2)])

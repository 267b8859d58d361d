"""A real dask.distributed cluster on 127.0.0.1 (scheduler + two workers, subprocesses) and a
small synthetic two-date scene with a local report of it, shared by the cluster tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCHEDULER = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
START_TIMEOUT_S = 90
TESTS = Path(__file__).resolve().parents[1]


@dataclass
class Cluster:
    """Address of the running scheduler and where the processes log."""

    address: str
    logs: Path

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of every process's log, for failure messages."""
        out = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """``dask scheduler`` and two ``dask worker`` processes (one thread each, with nannies)
    on loopback and random free ports; every process group is killed at teardown."""
    from distributed import Client

    root = tmp_path_factory.mktemp("cluster")
    scheduler_file = root / "scheduler.json"
    procs: list[subprocess.Popen] = []

    # Workers import test helpers (runtime.blockfuncs) from tests/, as the test process does.
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}

    def start(name: str, argv: list[str]) -> None:
        cwd = root / name  # not the client's cwd: workers must not depend on it
        cwd.mkdir()
        with open(root / f"{name}.log", "wb") as log:  # the child keeps its own handle
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        procs.append(proc)

    try:
        start(
            "scheduler",
            [*SCHEDULER, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file), "--idle-timeout", "600"],
        )  # fmt: skip
        address = _wait_for_address(scheduler_file, procs[0])
        for i in (1, 2):
            start(
                f"worker{i}",
                [*WORKER, address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard", "--death-timeout", "60", "--name", f"worker{i}"],
            )  # fmt: skip
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield Cluster(address=address, logs=root)
    finally:
        for proc in procs:
            _kill_group(proc)


def _wait_for_address(path: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {proc.returncode}")
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return json.loads(path.read_text())["address"]
        time.sleep(0.1)
    raise RuntimeError("dask scheduler did not start")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (a worker's nanny and its worker), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
            return


@dataclass
class ReportCase:
    """Inputs of a small report and its outputs computed with the local scheduler."""

    items: Path
    fields: Path
    config: Path
    local: Path

    def command(self, outdir: Path, *extra: str) -> list[str]:
        """The ``agrivision report`` command line (a fresh interpreter, as a user runs it)."""
        return [sys.executable, "-m", "agrivision", "report", str(self.items),
                "--fields", str(self.fields), "-o", str(outdir), "--config", str(self.config),
                *extra]  # fmt: skip

    def run(self, outdir: Path, *extra: str) -> subprocess.CompletedProcess:
        """Run the report quietly into ``outdir``; output captured."""
        return subprocess.run(
            self.command(outdir, "--quiet", *extra), capture_output=True, text=True, timeout=240
        )


@pytest.fixture(scope="module")
def report_case(tmp_path_factory) -> ReportCase:
    """A 384 x 384 synthetic two-date scene in 128-pixel chunks (a 3 x 3 block grid, so
    rasters are written block by block) and its report with the local scheduler."""
    from agrivision.synthetic import write_synthetic

    root = tmp_path_factory.mktemp("report_case")
    files = write_synthetic(
        root / "scene", seed=7, shape=(384, 384), dates=["2024-06-01", "2024-06-21"], chunks=128
    )
    config = root / "config.yaml"
    config.write_text("scene:\n  chunks: 128\nzones:\n  smooth: 3\noutput:\n  max_cards: 4\n")
    case = ReportCase(files.items, files.fields, config, root / "local")
    done = case.run(case.local)
    assert done.returncode == 0, done.stderr
    return case

"""Shared by the benchmarks: run a contender in a fresh subprocess and track its peak RSS.

Each contender runs in its own process so that its peak memory is its own; the poll covers
the whole process tree (dask worker processes, GDAL threads live in the same process).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import threading
import time
from collections.abc import Sequence

import numpy as np
import psutil


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` to completion; return the peak RSS in bytes of it and its children.

    Raises SystemExit naming the command when it fails.
    """
    proc = subprocess.Popen(list(cmd), env={**os.environ, **(env or {})})
    root = psutil.Process(proc.pid)
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for p in tree:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass  # a child that just exited
                peak = max(peak, total)
            except psutil.Error:
                return
            time.sleep(0.01)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    code = proc.wait()
    stop.set()
    thread.join()
    if code != 0:
        raise SystemExit(f"failed (exit {code}): {' '.join(cmd)}")
    return peak


def write_result(result: os.PathLike, output: np.ndarray, seconds: float, **extra: float) -> None:
    """A contender's output beside ``result`` (``.npy``), its time, own peak RSS and ``extra``
    figures."""
    path = os.fspath(result)
    np.save(os.path.splitext(path)[0] + ".npy", output)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(path, "w") as fh:
        json.dump({"seconds": seconds, "peak": peak, **extra}, fh)

"""Block functions for the cluster tests. They live in a module of their own, which the test
workers import (their PYTHONPATH holds ``tests/``), because dask sends functions by name."""

from __future__ import annotations

import time

import numpy as np


def slow_double(block: np.ndarray, seconds: float) -> np.ndarray:
    """``2 * block``, after ``seconds`` of sleep (so that tasks are running when we look)."""
    time.sleep(seconds)
    return block * 2


def fail_at(block: np.ndarray, location: tuple[int, ...], block_info=None) -> np.ndarray:
    """The block, or a ValueError for the block at chunk ``location``."""
    if block_info[0]["chunk-location"] == location:
        raise ValueError(f"bad block {location}")
    return block


def count_checkpoint_loads() -> None:
    """On a worker: forget cached models and count the checkpoint loads from now on."""
    from agrivision.segment import predict

    predict._MODELS.clear()
    original = getattr(predict, "_uncounted_load", predict.load_checkpoint)
    predict._uncounted_load = original
    predict._loads = []

    def counting(*args, **kwargs):
        predict._loads.append(args[0])
        return original(*args, **kwargs)

    predict.load_checkpoint = counting


def checkpoint_loads() -> int:
    """On a worker: checkpoint loads since :func:`count_checkpoint_loads`."""
    from agrivision.segment import predict

    return len(predict._loads)

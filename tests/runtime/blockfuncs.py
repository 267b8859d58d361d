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

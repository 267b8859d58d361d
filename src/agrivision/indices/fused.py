"""Fused per-pixel kernel for normalized differences ``(a - b)/(a + b)`` (NDVI, NDREI, NBR...).

Kept because it measurably beats numpy on a chunk: numpy makes three passes and three
temporaries (plus the non-finite clean-up pass), the kernel one pass and no temporaries
(see ``benchmarks/indices.py`` and the indices tests). The kernel is serial on purpose: dask
already runs one chunk per thread, and ``nogil`` lets those threads overlap; a
``parallel=True`` kernel nested in dask's threads was slower on a loaded 2-core machine.
``import numba`` happens when this module is imported (only by ``compute`` for formulas of
this shape); compilation happens on the first call and is cached on disk (``cache=True``).
Results equal numpy's bit for bit: same float32 operations in the same order, no fastmath.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)
def _nd_kernel(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for i in range(a.size):
        x = a[i]
        y = b[i]
        v = (x - y) / (x + y)
        out[i] = v if math.isfinite(v) else np.nan


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``(a - b)/(a + b)`` in float32 with NaN for non-finite results; ``None`` if unsupported.

    Same-shape blocks only (broadcasting blocks go through the generic numpy path).
    """
    if a.shape != b.shape:
        return None
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    out = np.empty(a.shape, dtype=np.float32)
    _nd_kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    return out

"""Counter-based noise: every value is a pure function of (seed, stream, row, col).

No RNG state is carried between calls, so a pixel gets the same value whichever chunk (or
which process) computes it: synthetic scenes are identical for any chunking. The hash is
SplitMix64's finaliser, which passes BigCrush as a counter-based generator; smooth noise is
value noise (hashed lattice values, smoothstep interpolation) summed over octaves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_U53 = np.float64(2.0**-53)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (wrapping uint64 arithmetic)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def hash64(seed: int, stream: int, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
    """64-bit hash of ``(seed, stream, row, col)``, broadcast over ``rows`` and ``cols``."""
    key = _mix(np.asarray([(seed * 0x1000003 + stream) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    r = np.asarray(rows).astype(np.int64).view(np.uint64)
    c = np.asarray(cols).astype(np.int64).view(np.uint64)
    # The key is 1-d (0-d uint64 arithmetic would warn on the intended wrap-around).
    return _mix(_mix(key + r * _GOLDEN) + c).reshape(np.broadcast_shapes(r.shape, c.shape))


def uniform(seed: int, stream: int, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
    """Uniform float64 values in [0, 1) keyed by ``(seed, stream, row, col)``."""
    return (hash64(seed, stream, rows, cols) >> np.uint64(11)).astype(np.float64) * _U53


def uniform16(seed: int, stream: int, rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """``n`` independent float32 uniforms in [0, 1) per pixel, 16 bits each (4 per hash).

    Returns an array of shape ``(n, *broadcast(rows, cols).shape)``.
    """
    out = []
    for k in range((n + 3) // 4):
        h = hash64(seed, stream * 64 + k, rows, cols)
        for shift in range(0, 64, 16):
            out.append((h >> np.uint64(shift)).astype(np.uint16))
    return np.stack(out[:n]).astype(np.float32) * np.float32(1 / 65536)


def value_noise(
    seed: int, stream: int, rows: np.ndarray, cols: np.ndarray, cell: float
) -> np.ndarray:
    """Smooth noise in [0, 1] with feature size ``cell`` pixels, for pixel grids.

    ``rows`` and ``cols`` are 1-d absolute pixel positions (they may be offset or
    fractional, e.g. for displaced cloud shadows). Returns float32 ``(len(rows), len(cols))``.
    The smoothstep interpolation of the hashed lattice is separable: along x on the few
    lattice rows first, then along y with whole-row gathers (element-wise only, so the
    result is bit-identical for any window, unlike a BLAS formulation).
    """
    ry, fy, r0, nr = _nodes(np.ravel(rows), cell)
    cx, fx, c0, nc = _nodes(np.ravel(cols), cell)
    lattice = uniform(
        seed, stream, np.arange(r0, r0 + nr).reshape(-1, 1), np.arange(c0, c0 + nc).reshape(1, -1)
    ).astype(np.float32)
    along_x = lattice[:, cx] * (1 - fx) + lattice[:, cx + 1] * fx  # (nr, len(cols))
    fy = fy[:, None]
    return along_x[ry] * (1 - fy) + along_x[ry + 1] * fy


def _nodes(pos: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Lower lattice node (relative), smoothstep weight, first node and node count."""
    t = np.asarray(pos, dtype=np.float64) / cell
    node = np.floor(t)
    first = int(node.min())
    return (node - first).astype(np.intp), _smooth(t - node), first, int(node.max()) - first + 2


def fbm(
    seed: int,
    stream: int,
    rows: np.ndarray,
    cols: np.ndarray,
    cells: Sequence[float],
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Weighted sum of :func:`value_noise` octaves (weights default to halving), in [0, 1]."""
    weights = list(weights) if weights is not None else [0.5**i for i in range(len(cells))]
    total = sum(weights)
    out = np.zeros((np.size(rows), np.size(cols)), dtype=np.float32)
    for k, (cell, w) in enumerate(zip(cells, weights, strict=True)):
        out += np.float32(w / total) * value_noise(seed, stream * 16 + k, rows, cols, cell)
    return out


def _smooth(t: np.ndarray) -> np.ndarray:
    return (t * t * (3 - 2 * t)).astype(np.float32)

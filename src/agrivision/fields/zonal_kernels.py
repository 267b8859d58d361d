"""Coverage-weighted statistics of one raster window for many fields (numba kernels).

Definitions follow exactextract (https://isciences.github.io/exactextract/operations.html):
every pixel counts with its coverage fraction ``c`` and NaN pixels are skipped, so
``count = sum(c)``, ``sum = sum(c * v)``, ``mean = sum / count``, ``std`` is the population
standard deviation with weights ``c``, ``min``/``max`` run over pixels with ``c > 0`` and
quantiles use exactextract's weighted definition (``WeightedQuantiles`` in its
``weighted_quantiles.cpp``, fed from its value -> summed-weight table, so equal values are
merged first): with the n distinct values sorted ascending and
``S_k = k * w_k + (n - 1) * sum(w_0 .. w_{k-1})`` (k from 0), the q-quantile interpolates
linearly in ``S`` at ``q * (n - 1) * sum(w)``. For equal weights and distinct values this is
numpy's default (linear) quantile. exactextract then rounds quantiles to the raster's dtype
(float32); we keep float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Columns of the base statistics array returned by window_stats (quantiles follow).
BASE_STATS = ("count", "pixel_count", "sum", "mean", "std", "min", "max")


_SIGN = np.uint64(1 << 63)


@njit(cache=True, nogil=True)
def _radix_argsort(x, n, keys, keys2, order, order2, hist):
    """Stable ascending argsort of ``x[:n]`` (float64, no NaN) by LSD radix sort.

    Hand-written because numba's quicksort argsort costs ~6x more on the ~1,000 shuffled
    values of a field (branch mispredictions); radix sorting has no data-dependent branches.
    Keys are the IEEE bits made order-preserving; byte passes whose digit is the same for all
    values (e.g. the zero low mantissa bytes of float32 data) are skipped. Returns the index
    array holding the order (one of the two work buffers).
    """
    bits = x[:n].view(np.uint64)
    hist[:] = 0
    for i in range(n):
        b = bits[i]
        k = ~b if b & _SIGN else b | _SIGN
        keys[i] = k
        order[i] = i
        for p in range(8):
            hist[p, (k >> np.uint64(8 * p)) & np.uint64(255)] += 1
    for p in range(8):
        h = hist[p]
        if h.max() == n:
            continue
        total = 0
        for d in range(256):
            c = h[d]
            h[d] = total
            total += c
        shift = np.uint64(8 * p)
        for i in range(n):
            d = (keys[i] >> shift) & np.uint64(255)
            j = h[d]
            h[d] = j + 1
            keys2[j] = keys[i]
            order2[j] = order[i]
        keys, keys2 = keys2, keys
        order, order2 = order2, order
    return order


@njit(cache=True, nogil=True)
def _weighted_quantiles(x, w, n, qs, out, work_u, work_i, hist, xs, ws, s):
    """Write exactextract's weighted quantiles of (x[:n], w[:n]) for each of ``qs`` to ``out``.

    ``work_u`` (uint64, 2 x len), ``work_i`` (int64, 2 x len), ``hist`` (8 x 256), ``xs``,
    ``ws`` and ``s`` (float64) are preallocated work buffers at least ``n`` long.
    """
    order = _radix_argsort(x, n, work_u[0], work_u[1], work_i[0], work_i[1], hist)
    # Equal values are merged, their weights summed (exactextract reads its value->weight table).
    m = 0
    for i in order[:n]:
        if m > 0 and x[i] == xs[m - 1]:
            ws[m - 1] += w[i]
        else:
            xs[m] = x[i]
            ws[m] = w[i]
            m += 1
    cum = 0.0
    for i in range(m):
        s[i] = i * ws[i] + (m - 1) * cum
        cum += ws[i]
    sn = cum * (m - 1)
    for j in range(len(qs)):
        target = qs[j] * sn
        right = np.searchsorted(s[:m], target, side="right")
        if right == 0:
            out[j] = xs[0]
        elif right == m:
            out[j] = xs[m - 1]
        else:
            left = right - 1
            out[j] = xs[left] + (target - s[left]) * (xs[right] - xs[left]) / (s[right] - s[left])


@njit(cache=True, nogil=True)
def window_stats(values, nodata, cell_ptr, cell_idx, cell_cov, qs):
    """Statistics of every field over every time step of one window.

    Parameters
    ----------
    values : array (time, cells)
        The window's pixel values, flattened row-major per time step; NaN = no data.
    nodata : float
        A further value to skip (the raster's encoded nodata), or NaN for none.
    cell_ptr, cell_idx, cell_cov : arrays
        Sparse coverage from :func:`agrivision.fields.coverage.group_coverage`.
    qs : float64 array
        Quantile levels in [0, 1] (may be empty).

    Returns
    -------
    float64 array (fields, time, len(BASE_STATS) + len(qs))
        Where a field has no valid pixel: count, pixel_count and sum are 0, the rest NaN.
    """
    n_fields = len(cell_ptr) - 1
    n_time = values.shape[0]
    nq = len(qs)
    out = np.full((n_fields, n_time, 7 + nq), np.nan)  # 7 = len(BASE_STATS)
    max_cells = 0
    for j in range(n_fields):
        max_cells = max(max_cells, cell_ptr[j + 1] - cell_ptr[j])
    buf_v = np.empty(max_cells)
    buf_w = np.empty(max_cells)
    if nq > 0:  # quantile work buffers, allocated once per window
        work_u = np.empty((2, max_cells), dtype=np.uint64)
        work_i = np.empty((2, max_cells), dtype=np.int64)
        hist = np.empty((8, 256), dtype=np.int64)
        xs = np.empty(max_cells)
        ws = np.empty(max_cells)
        s = np.empty(max_cells)
    for j in range(n_fields):
        a, b = cell_ptr[j], cell_ptr[j + 1]
        for t in range(n_time):
            row = values[t]
            k = 0
            total_w = 0.0
            total_s = 0.0
            lo = np.inf
            hi = -np.inf
            for i in range(a, b):
                v = float(row[cell_idx[i]])
                if v == v and v != nodata:  # NaN never equals itself
                    c = cell_cov[i]
                    buf_v[k] = v
                    buf_w[k] = c
                    k += 1
                    total_w += c
                    total_s += c * v
                    lo = min(lo, v)
                    hi = max(hi, v)
            res = out[j, t]
            res[0] = total_w
            res[1] = k
            res[2] = total_s
            if k == 0:
                continue
            mean = total_s / total_w
            # Second pass about the mean: stable where E[v^2] - mean^2 would cancel.
            m2 = 0.0
            for i in range(k):
                m2 += buf_w[i] * (buf_v[i] - mean) ** 2
            res[3] = mean
            res[4] = np.sqrt(m2 / total_w)
            res[5] = lo
            res[6] = hi
            if nq > 0:
                _weighted_quantiles(buf_v, buf_w, k, qs, res[7:], work_u, work_i, hist, xs, ws, s)
    return out


@njit(cache=True, nogil=True)
def window_fractions(values, nodata, cell_ptr, cell_idx, cell_cov, codes):
    """Coverage-weighted share of each class code among every field's valid pixels.

    exactextract's ``frac`` restricted to ``codes``: ``sum(c, value == code) / sum(c)`` over
    the valid pixels (not NaN, not ``nodata``). Sums run in the same pixel order as
    :func:`window_stats`, so a share equals the ``mean`` of the 0/1 indicator raster of that
    code, bit for bit.

    Parameters
    ----------
    values : array (time, cells)
        The window's class values, flattened row-major per time step.
    nodata : float
        The raster's nodata value (e.g. 0 = background), or NaN for none.
    cell_ptr, cell_idx, cell_cov : arrays
        Sparse coverage from :func:`agrivision.fields.coverage.group_coverage`.
    codes : float64 array
        Class codes whose shares are returned.

    Returns
    -------
    float64 array (fields, time, len(codes))
        NaN where a field has no valid pixel.
    """
    n_fields = len(cell_ptr) - 1
    n_time = values.shape[0]
    n_codes = len(codes)
    out = np.full((n_fields, n_time, n_codes), np.nan)
    shares = np.empty(n_codes)
    for j in range(n_fields):
        a, b = cell_ptr[j], cell_ptr[j + 1]
        for t in range(n_time):
            row = values[t]
            k = 0
            total_w = 0.0
            shares[:] = 0.0
            for i in range(a, b):
                v = float(row[cell_idx[i]])
                if v == v and v != nodata:
                    c = cell_cov[i]
                    k += 1
                    total_w += c
                    for m in range(n_codes):
                        if v == codes[m]:
                            shares[m] += c
            if k > 0:
                for m in range(n_codes):
                    out[j, t, m] = shares[m] / total_w
    return out

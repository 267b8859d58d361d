"""Within-field anomalies: per-field robust statistics and robust z-scores.

A pixel is judged against its own field: ``z = (x - median_f) / (1.4826 * MAD_f)``. The
per-field median and MAD come from per-field histograms summed over dask chunks (one pass,
memory bounded by the chunk size and the non-zero (field, bin) cells), not from the raster.

Accuracy: quantiles are read from the histogram with ``bins`` bins over ``range``; the samples
of a bin are placed evenly inside it, and numpy's linear-interpolation rule is applied to these
positions. A quantile is therefore within one bin width (``(range[1] - range[0]) / bins``,
0.001 by default) of ``numpy.quantile``; the MAD within two (within one for continuous data;
more only when many values sit in one bin, e.g. values rounded to the bin width). Values
outside ``range`` are counted in the edge bins (quantiles saturate at the range); the mean is
exact.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from agrivision.fields.rasterize import ids_to_codes
from agrivision.grid import check_same_grid
from agrivision.health._perfield import (
    as_dask,
    group_index,
    id_columns,
    per_field_sums,
    with_field_ids,
)

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
_BATCH = 1024  # fields x time steps densified at once when reading quantiles


def field_statistics(
    index: xr.DataArray,
    field_ids: xr.DataArray,
    *,
    bins: int = 2000,
    range: tuple[float, float] = (-1.0, 1.0),
) -> pd.DataFrame:
    """Per-field pixel count, mean, median, MAD, p10 and p90 of an index, without materialising.

    Parameters
    ----------
    index
        ``(y, x)`` or ``(time, y, x)`` float index (e.g. NDVI), NaN = invalid; dask-backed.
    field_ids
        ``(y, x)`` field-id raster on the same grid (:func:`agrivision.fields.field_raster`).
    bins, range
        Histogram bins over ``range`` (index units); resolution ``(range[1]-range[0])/bins``.

    Returns
    -------
    pandas.DataFrame
        One row per field (and time step, for 3-D input) with at least one valid pixel:
        ``field_id``, [``<time dim>``], ``count`` (pixels), ``mean``, ``median``, ``mad``
        (median absolute deviation, index units), ``p10``, ``p90``. Computed eagerly: one
        pass over ``index`` and ``field_ids``.
    """
    sums = field_histograms(index, field_ids, bins=bins, range=range)
    starts = np.flatnonzero(np.diff(group_index(sums), prepend=-1))
    table = sums[["code", "t"]].iloc[starts].reset_index(drop=True)
    table["count"] = _totals(sums["count"].to_numpy(), starts)
    table["mean"] = _totals(sums["sum"].to_numpy(), starts) / table["count"]
    quantiles = histogram_quantiles(sums, bins, range, [0.5, 0.1, 0.9], mad=True)
    table[["median", "p10", "p90", "mad"]] = quantiles
    return with_field_ids(table, index, field_ids)[
        [*id_columns(index), "count", "mean", "median", "mad", "p10", "p90"]
    ]


def field_histograms(
    index: xr.DataArray,
    field_ids: xr.DataArray,
    *,
    bins: int = 2000,
    range: tuple[float, float] = (-1.0, 1.0),
) -> pd.DataFrame:
    """Sparse per-field histograms of an index (eager, one pass).

    Returns
    -------
    pandas.DataFrame
        ``code`` (field-id raster code), ``t`` (time position), ``key`` (bin: ``range[0] +
        key * width`` is its lower edge), ``count`` (pixels) and ``sum`` (of index values),
        only non-empty bins, sorted.
    """
    lo, hi = float(range[0]), float(range[1])
    keys = index.copy(data=da.map_blocks(_bin, as_dask(index), lo, hi, bins, dtype=np.int32))
    return per_field_sums(field_ids, keys, bins, weights=index)


def robust_z(
    index: xr.DataArray,
    field_ids: xr.DataArray,
    stats: pd.DataFrame,
    *,
    mad_floor: float = 0.01,
) -> xr.DataArray:
    """Robust z-score of every pixel against its own field: lazy float32.

    ``z = (x - median_f) / (1.4826 * max(MAD_f, mad_floor))``. The MAD floor (index units)
    keeps near-uniform fields (MAD about 0, e.g. synthetic or saturated canopies) from turning
    tiny deviations into huge scores: with the default 0.01 a pixel needs to be 0.044 NDVI
    below its field's median to reach ``z = -3``.

    Parameters
    ----------
    index
        The index the statistics were computed from, ``(y, x)`` or ``(time, y, x)``.
    field_ids
        The field-id raster used for ``stats``.
    stats
        Output of :func:`field_statistics`.
    mad_floor
        Smallest MAD used as the scale (index units).

    Returns
    -------
    xarray.DataArray
        float32, same dims/coords as ``index``, NaN outside fields, where ``index`` is NaN
        and for fields without statistics.
    """
    check_same_grid(index, field_ids)
    codes, median, scale = _lookup_tables(index, field_ids, stats, mad_floor)
    data = as_dask(index)
    fid = as_dask(field_ids).rechunk(data.chunks[-2:])
    z = da.map_blocks(_z_block, data, fid, codes, median, scale, dtype=np.float32)
    out = index.copy(data=z)
    out.name = f"{index.name or 'index'}_z"
    out.attrs = {"long_name": "robust z-score against the field median", "mad_floor": mad_floor}
    return out


def hotspot_share(
    z: xr.DataArray, field_ids: xr.DataArray, *, threshold: float = -3.0
) -> pd.DataFrame:
    """Share of each field's valid pixels whose robust z-score is below ``threshold``.

    Returns
    -------
    pandas.DataFrame
        ``field_id``, [``<time dim>``], ``valid_pixels``, ``hotspot_pixels``,
        ``hotspot_share`` (0..1). Computed eagerly (one pass over ``z``).
    """
    keys = xr.where(np.isfinite(z), (z < threshold).astype(np.int32), -1)
    sums = per_field_sums(field_ids, keys, 2)
    table = sums.pivot_table(index=["code", "t"], columns="key", values="count", fill_value=0)
    table = table.reindex(columns=[0, 1], fill_value=0).astype(np.int64).reset_index()
    table.columns.name = None
    table["valid_pixels"] = table[0] + table[1]
    table["hotspot_pixels"] = table[1]
    table["hotspot_share"] = table[1] / table["valid_pixels"]
    return with_field_ids(table, z, field_ids)[
        [*id_columns(z), "valid_pixels", "hotspot_pixels", "hotspot_share"]
    ]


def histogram_quantiles(
    sums: pd.DataFrame,
    bins: int,
    range: tuple[float, float],
    qs: list[float],
    *,
    mad: bool = False,
) -> np.ndarray:
    """Quantiles (and optionally the MAD) per (code, t) group of a sparse histogram table.

    ``sums`` has columns ``code``, ``t``, ``key`` (bin) and ``count``, sorted, as returned by
    ``per_field_sums``. Returns ``(groups, len(qs) [+ 1])`` in group order; the MAD, if
    asked for, is the last column and uses the first quantile in ``qs`` as the median.
    """
    lo, hi = range
    width = (hi - lo) / bins
    group = group_index(sums)
    n_groups = int(group.max()) + 1 if len(group) else 0
    out = np.empty((n_groups, len(qs) + int(mad)))
    bounds = np.searchsorted(group, np.arange(0, n_groups + _BATCH, _BATCH))
    for start in np.arange(0, n_groups, _BATCH).tolist():
        stop = min(start + _BATCH, n_groups)
        rows = slice(bounds[start // _BATCH], bounds[start // _BATCH + 1])
        counts = np.zeros((stop - start, bins))
        counts[group[rows] - start, sums["key"].to_numpy()[rows]] = sums["count"].to_numpy()[rows]
        cum = np.cumsum(counts, axis=1)
        values = [_quantile(counts, cum, q, lo, width) for q in qs]
        if mad:
            values.append(_mad(counts, cum, values[0], lo, width))
        out[start:stop] = np.stack(values, axis=1)
    return out


def _quantile(counts, cum, q: float, lo: float, width: float) -> np.ndarray:
    # numpy's "linear" quantile: between the sorted samples at ranks floor(h) and floor(h)+1.
    n = cum[:, -1]
    h = (n - 1) * q
    below = np.floor(h)
    above = np.minimum(below + 1, n - 1)
    v0 = _rank_value(counts, cum, below, lo, width)
    v1 = _rank_value(counts, cum, above, lo, width)
    return v0 + (h - below) * (v1 - v0)


def _rank_value(counts, cum, rank, lo: float, width: float) -> np.ndarray:
    """Value of the sample of 0-based ``rank``: samples are spread evenly inside their bin."""
    b = (cum > rank[:, None]).argmax(axis=1)
    rows = np.arange(len(b))
    before = cum[rows, b] - counts[rows, b]
    return lo + width * (b + (rank - before + 0.5) / counts[rows, b])


def _mad(counts, cum, median, lo: float, width: float) -> np.ndarray:
    """Median absolute deviation of the samples as placed by :func:`_rank_value`.

    The k-th smallest deviation is the smallest ``d`` with at least ``k + 1`` samples in
    ``[median - d, median + d]`` (bisection: 48 halvings of the range, far below a bin);
    the two middle ones are interpolated as numpy's median does.
    """
    n = cum[:, -1]
    before = cum - counts
    rows = np.arange(len(cum))

    def samples(v, upper: bool):
        # samples at or below v (upper) / strictly below v: lo_b + width * (j + 0.5) / c_b
        pos = (v - lo) / width
        b = np.clip(np.floor(pos), 0, counts.shape[1] - 1).astype(np.intp)
        c = counts[rows, b]
        j = (pos - b) * c - 0.5
        inside = np.floor(j) + 1 if upper else np.ceil(j)
        return before[rows, b] + np.clip(inside, 0, c)

    def kth(k):
        low, high = np.zeros_like(median), np.full_like(median, width * counts.shape[1])
        for _ in range(48):
            mid = (low + high) / 2
            enough = samples(median + mid, True) - samples(median - mid, False) >= k + 1
            low, high = np.where(enough, low, mid), np.where(enough, mid, high)
        return high

    h = (n - 1) / 2
    below = np.floor(h)
    d0, d1 = kth(below), kth(np.minimum(below + 1, n - 1))
    return d0 + (h - below) * (d1 - d0)


def _totals(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts) if len(starts) else values[:0]


def _bin(x: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    b = np.floor((x.astype(np.float64) - lo) * (bins / (hi - lo)))
    b = np.clip(b, 0, bins - 1, out=b)
    b[~np.isfinite(x)] = -1
    return b.astype(np.int32)


def _z_block(x, fid, codes, median, scale, block_info=None):
    t0 = block_info[0]["array-location"][0][0] if x.ndim == 3 else 0
    x3 = x[None] if x.ndim == 2 else x
    col = _columns(fid, codes)
    out = np.empty(x3.shape, np.float32)
    for t in range(x3.shape[0]):
        # pixels of no known field take the last column, NaN: their z is NaN
        out[t] = (x3[t] - median[t0 + t][col]) / scale[t0 + t][col]
    return out if x.ndim == 3 else out[0]


def _columns(fid: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Column of each pixel's field code among the sorted ``codes``; ``len(codes)`` for
    pixels in no field or in a field without statistics."""
    if len(codes) and codes[-1] <= 2 * fid.size:  # a lookup table: O(1) a pixel
        table = np.full(int(codes[-1]) + 2, len(codes), np.intp)
        table[codes] = np.arange(len(codes))
        return table[np.clip(fid, 0, len(table) - 1)]
    pos = np.clip(np.searchsorted(codes, fid), 0, max(len(codes) - 1, 0))
    known = (codes[pos] == fid) & (fid > 0) if len(codes) else False
    return np.where(known, pos, len(codes))


def _lookup_tables(index, field_ids, stats, mad_floor: float):
    """Sorted field codes and (time, code) tables of median and scale, with one more
    column, NaN, for pixels of no known field."""
    codes_all = ids_to_codes(field_ids, stats["field_id"])
    codes = np.unique(codes_all[codes_all > 0])
    n_t = index.shape[0] if index.ndim == 3 else 1
    t = (
        pd.Index(index[index.dims[0]].values).get_indexer(stats[index.dims[0]])
        if index.ndim == 3
        else np.zeros(len(stats), np.intp)
    )
    keep = (codes_all > 0) & (t >= 0)
    median = np.full((n_t, len(codes) + 1), np.nan)
    scale = np.full((n_t, len(codes) + 1), np.nan)
    col = np.searchsorted(codes, codes_all[keep])
    median[t[keep], col] = stats["median"].to_numpy()[keep]
    scale[t[keep], col] = MAD_TO_SIGMA * np.maximum(stats["mad"].to_numpy()[keep], mad_floor)
    return codes, median, scale

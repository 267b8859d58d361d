"""Many fields' index values split into ordered classes, and how much of their variance the split explains.

Every field's values are binned to :data:`BIN` index units (finer than any agronomic
difference; season zones: 0.001 of the field's median) and classes are ranges of bins, so
splitting every field of a tile costs one pass over its pixels and a little work per bin:

* ``"quantile"``: breaks at the ``k/n`` quantiles, so classes have (nearly) equal areas;
* ``"kmeans"``: 1-D k-means (scikit-learn ``KMeans``, k-means++ seeded with 0, 3 inits) of
  the bins weighted by their counts; breaks are the midpoints between the sorted centres,
  i.e. every pixel goes to its nearest centre. In one dimension this minimises the
  within-class sum of squares, which is what Jenks' natural breaks do, so there is no
  separate Jenks method. One fit per field and number of zones: much slower than quantiles.

The quality of a split is its **variance reduction**, ``1 - within-class variance / field
variance`` (the share of the field's variance the zones explain; MZA and Fridgen et al. 2004
use the same figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit
from threadpoolctl import threadpool_limits

Method = Literal["quantile", "kmeans"]
METHODS: tuple[str, ...] = ("quantile", "kmeans")
#: Bin width (index units) of the values classes are made of.
BIN = 0.001


@dataclass(frozen=True)
class FieldHistograms:
    """The binned values of many fields (fields ``0..m - 1``), bins laid end to end.

    Field ``f`` owns bins ``offsets[f]:offsets[f + 1]``, from its lowest value's bin
    (``low[f]``, in units of :data:`BIN`) up; ``counts`` holds the
    number of values in each bin, ``where`` the bin of each value.
    """

    offsets: np.ndarray
    low: np.ndarray
    counts: np.ndarray
    where: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, field: np.ndarray, m: int) -> FieldHistograms:
        """Histograms of ``values`` (1-D, finite) by ``field`` (``0..m - 1`` each)."""
        low, offsets, counts, where = _histograms(values, field, m, BIN)
        return cls(offsets, low, counts, where)


def class_breaks(
    hist: FieldHistograms, n: int, method: Method, which: np.ndarray | None = None
) -> np.ndarray:
    """The ``n - 1`` breaks that split each field into ``n`` classes, as bins.

    Parameters
    ----------
    hist
        The fields' binned values.
    n
        Number of classes (>= 2).
    method
        ``"quantile"`` or ``"kmeans"`` (see the module docstring).
    which
        Boolean per field: the fields whose breaks are wanted (default all); the others
        get breaks past their last bin (one class).

    Returns
    -------
    numpy.ndarray
        int64, ``(fields, n - 1)``, ascending: the first bin of classes ``2..n``, relative
        to the field's first bin (a break past the field's last bin leaves a class empty).
    """
    if method == "quantile":
        return _quantile_breaks(hist.counts, hist.offsets, n)
    out = np.full((len(hist.low), n - 1), np.iinfo(np.int64).max)
    for f in np.flatnonzero(which) if which is not None else range(len(hist.low)):
        out[f] = _kmeans_breaks(hist.counts[hist.offsets[f] : hist.offsets[f + 1]], n)
    return out


def _kmeans_breaks(counts: np.ndarray, n: int) -> np.ndarray:
    from sklearn.cluster import KMeans  # here: importing sklearn costs ~1 s at every start-up

    bins = np.flatnonzero(counts)
    k = min(n, len(bins))
    # sklearn starts an OpenMP pool per fit: about 30 ms per tiny fit instead of about 1 ms.
    with threadpool_limits(1):
        model = KMeans(k, n_init=3, random_state=0).fit(bins[:, None], sample_weight=counts[bins])
    c = np.sort(model.cluster_centers_[:, 0])
    breaks = np.ceil((c[1:] + c[:-1]) / 2).astype(np.int64)  # nearest centre, ties go up
    return np.concatenate([breaks, np.full(n - k, len(counts))])


def bin_classes(hist: FieldHistograms, breaks: np.ndarray) -> np.ndarray:
    """Class ``1..n`` (``uint8``) of every bin: 1 + the number of its field's breaks at or below it.

    ``breaks`` is ``(fields, k)``, relative bins, ascending (pad with a large number).
    """
    return _bin_classes(hist.offsets, breaks)


def zone_stats(
    values: np.ndarray, field: np.ndarray, classes: np.ndarray, n_fields: int
) -> tuple[np.ndarray, np.ndarray]:
    """Variance reduction of each field's split, and the smallest step between class means.

    Parameters
    ----------
    values
        1-D finite values.
    field
        Field ``0..n_fields - 1`` of each value.
    classes
        Class ``0..255`` of each value.
    n_fields
        Number of fields.

    Returns
    -------
    tuple of numpy.ndarray
        Per field: ``1 - within-class variance / total variance`` (0..1; 0 for a constant
        field or one without values) and the smallest difference between the mean values
        of two classes present (values' units; inf with one class).
    """
    n, s1, s2 = _class_sums(values, field, classes, n_fields, int(classes.max(initial=0)) + 1)
    count = n.sum(axis=1)
    # around the field's mean: no cancellation in the sums of squares
    total = s2.sum(axis=1) - s1.sum(axis=1) ** 2 / np.maximum(count, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(n > 0, s2 - s1 * s1 / n, 0.0).sum(axis=1)
        reduction = np.where(total > 0, 1.0 - within / total, 0.0)
        means = np.where(n > 0, s1 / n, np.nan)
    step = np.diff(np.sort(means, axis=1), axis=1)  # absent classes (NaN) sort last
    step = np.where(np.isnan(step), np.inf, step).min(axis=1, initial=np.inf)
    return np.clip(reduction, 0.0, 1.0), step


@njit(cache=True, nogil=True)
def _class_sums(values, field, classes, n_fields, n_classes):
    """Count, sum and sum of squares of each field's classes, values taken about the field's mean."""
    total = np.zeros(n_fields)
    count = np.zeros(n_fields)
    for i in range(len(values)):
        total[field[i]] += values[i]
        count[field[i]] += 1
    n = np.zeros((n_fields, n_classes))
    s1 = np.zeros((n_fields, n_classes))
    s2 = np.zeros((n_fields, n_classes))
    for i in range(len(values)):
        f, k = field[i], classes[i]
        d = values[i] - total[f] / count[f]
        n[f, k] += 1
        s1[f, k] += d
        s2[f, k] += d * d
    return n, s1, s2


@njit(cache=True, nogil=True)
def _histograms(values: np.ndarray, field: np.ndarray, m: int, width: float):
    """Lowest bin and bin offsets of each field, the count of each bin and the bin of each value."""
    n = len(values)
    bins = np.empty(n, np.int64)
    low = np.full(m, np.iinfo(np.int64).max, np.int64)
    high = np.full(m, np.iinfo(np.int64).min, np.int64)
    for i in range(n):
        b = np.int64(np.floor(values[i] / width))
        bins[i] = b
        f = field[i]
        low[f] = min(low[f], b)
        high[f] = max(high[f], b)
    offsets = np.zeros(m + 1, np.int64)
    for f in range(m):
        offsets[f + 1] = offsets[f] + (high[f] - low[f] + 1 if high[f] >= low[f] else 0)
    counts = np.zeros(offsets[m], np.int64)
    for i in range(n):
        f = field[i]
        bins[i] += offsets[f] - low[f]
        counts[bins[i]] += 1
    return low, offsets, counts, bins


@njit(cache=True, nogil=True)
def _quantile_breaks(counts: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """Bin of the value at sorted position ``ceil(k / n * (count - 1))``, k = 1..n-1, per field."""
    m = len(offsets) - 1
    out = np.empty((m, n - 1), np.int64)
    for f in range(m):
        a, b = offsets[f], offsets[f + 1]
        total = 0
        for i in range(a, b):
            total += counts[i]
        cum, i = 0, a
        for k in range(1, n):
            position = int(np.ceil(k / n * (total - 1) - 1e-9))
            while i < b and cum + counts[i] <= position:
                cum += counts[i]
                i += 1
            out[f, k - 1] = i - a
    return out


@njit(cache=True, nogil=True)
def _bin_classes(offsets: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    out = np.empty(offsets[-1], np.uint8)
    for f in range(len(offsets) - 1):
        c = 0
        for i in range(offsets[f + 1] - offsets[f]):
            while c < breaks.shape[1] and i >= breaks[f, c]:
                c += 1
            out[offsets[f] + i] = c + 1
    return out

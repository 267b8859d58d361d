"""A field's index values split into ordered classes, and how much of their variance the split explains.

* ``"quantile"``: breaks at the ``k/n`` quantiles, so classes have (nearly) equal areas;
* ``"kmeans"``: 1-D k-means (scikit-learn ``KMeans``, k-means++ seeded with 0, 3 inits) of
  the values binned to 0.001 index units and weighted by their counts; breaks are the
  midpoints between the sorted centres, i.e. every pixel goes to its nearest centre. In one
  dimension this minimises the within-class sum of squares, which is what Jenks' natural
  breaks do, so there is no separate Jenks method.

The quality of a split is its **variance reduction**, ``1 - within-class variance / field
variance`` (the share of the field's variance the zones explain; MZA and Fridgen et al. 2004
use the same figure), and :func:`choose_n` picks the number of zones where one more zone
stops paying.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

Method = Literal["quantile", "kmeans"]
METHODS: tuple[str, ...] = ("quantile", "kmeans")
#: Bin width (index units) of the values k-means sees: finer than any agronomic difference.
KMEANS_BIN = 0.001


def class_breaks(values: np.ndarray, n: int, method: Method) -> np.ndarray:
    """The ``n - 1`` ascending breaks that split ``values`` into ``n`` classes.

    Parameters
    ----------
    values
        1-D finite index values of one field (any units).
    n
        Number of classes (>= 2).
    method
        ``"quantile"`` or ``"kmeans"`` (see the module docstring).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n - 1,)``; ``inf`` where there are fewer distinct values than
        classes (the top classes stay empty).
    """
    if method == "quantile":
        return np.quantile(values.astype(np.float64), np.arange(1, n) / n)
    from sklearn.cluster import KMeans  # here: importing sklearn costs ~1 s at every start-up

    bins, counts = np.unique(np.round(values / KMEANS_BIN), return_counts=True)
    centres = bins * KMEANS_BIN
    k = min(n, len(centres))
    # sklearn starts an OpenMP pool per fit: about 30 ms per tiny fit instead of about 1 ms.
    with threadpool_limits(1):
        model = KMeans(k, n_init=3, random_state=0).fit(centres[:, None], sample_weight=counts)
    c = np.sort(model.cluster_centers_[:, 0])
    return np.concatenate([(c[1:] + c[:-1]) / 2, np.full(n - k, np.inf)])


def classify_values(values: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """Class ``1..n`` of each value (``uint8``): 1 + the number of breaks at or below it."""
    return (1 + np.searchsorted(breaks, values, side="right")).astype(np.uint8)


def variance_reduction(values: np.ndarray, classes: np.ndarray) -> float:
    """``1 - within-class variance / total variance`` of ``values`` split by ``classes``.

    Parameters
    ----------
    values
        1-D finite values.
    classes
        Non-negative integer class of each value (same length).

    Returns
    -------
    float
        0..1; 0 for a constant field (nothing to explain) or no values.
    """
    if values.size == 0:
        return 0.0
    v = values.astype(np.float64)
    total = float(((v - v.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    count = np.bincount(classes, minlength=1)
    sums = np.bincount(classes, v)
    squares = np.bincount(classes, v * v)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(count > 0, squares - sums * sums / count, 0.0).sum()
    return float(np.clip(1.0 - within / total, 0.0, 1.0))


def choose_n(reduction: Mapping[int, float], min_gain: float) -> int:
    """The smallest number of zones after which one more zone explains less than ``min_gain``.

    Parameters
    ----------
    reduction
        Variance reduction of each candidate number of zones (consecutive integers).
    min_gain
        Share of the field's variance (0..1) one more zone must add to be worth it.

    Returns
    -------
    int
        The chosen number; the largest candidate when every step pays.
    """
    ns = sorted(reduction)
    for n, bigger in itertools.pairwise(ns):
        if reduction[bigger] - reduction[n] < min_gain:
            return n
    return ns[-1]

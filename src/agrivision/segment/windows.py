"""Where square windows start along one axis of a raster: training chips and prediction
windows share one rule, so a chip grid and a prediction grid of the same size and stride agree.
"""

from __future__ import annotations


def window_starts(n: int, size: int, stride: int, *, pad_short: bool = False) -> list[int]:
    """Window offsets along an axis of ``n`` pixels.

    Windows start every ``stride`` pixels from 0; when that grid does not reach the far edge,
    one more window is placed flush with it (starting at ``n - size``), so every pixel is
    covered and no window reaches past the edge.

    Parameters
    ----------
    n
        Axis length, pixels.
    size
        Window edge, pixels.
    stride
        Step between window starts, pixels (``1 <= stride``; ``size - stride`` is the overlap).
    pad_short
        What an axis shorter than one window gets: one window at 0 that the caller pads
        (prediction), or none (chips must be whole).

    Returns
    -------
    list of int
        Increasing start offsets, pixels.
    """
    if n < size:
        return [0] if pad_short else []
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] + size < n:
        starts.append(n - size)
    return starts

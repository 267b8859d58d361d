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


def window_size(n: int, largest: int, overlap: int, multiple: int) -> int:
    """Edge of the prediction windows along an axis of ``n`` pixels: the fewest windows no
    larger than ``largest`` that cover the axis overlapping by at least ``overlap``, each as
    small as that allows (rounded up to ``multiple``).

    Sizing the windows to the scene leaves no window mostly outside it, so the overlap costs
    only what blending needs; larger windows also run faster per pixel on a CPU.

    Parameters
    ----------
    n
        Axis length, pixels.
    largest
        Largest window edge, pixels; a multiple of ``multiple``.
    overlap
        Overlap of neighbouring windows, pixels (``0 <= overlap < largest``).
    multiple
        The model's input multiple (``2 ** encoder_depth``).

    Returns
    -------
    int
        Window edge, pixels; ``window_starts(n, size, size - overlap)`` then places that many
        windows (one, padded, where ``n`` is not above a single window).
    """
    count = max(1, -(-(n - overlap) // (largest - overlap)))
    size = -(-(n + (count - 1) * overlap) // count)
    return -(-size // multiple) * multiple

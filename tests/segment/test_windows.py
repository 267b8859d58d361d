"""Window starts along an axis: a regular grid plus one window flush with the far edge; window
sizes fitted to the axis."""

from itertools import pairwise

import pytest

from agrivision.segment.windows import window_size, window_starts


@pytest.mark.parametrize(
    ("n", "size", "stride", "expected"),
    [
        (100, 32, 32, [0, 32, 64, 68]),  # grid ends at 96: one more window ends on 100
        (96, 32, 24, [0, 24, 48, 64]),  # grid ends exactly on the edge: nothing added
        (100, 32, 28, [0, 28, 56, 68]),
        (32, 32, 32, [0]),  # one window fills the axis
        (33, 32, 8, [0, 1]),  # the flush window may overlap the last one almost fully
        (31, 32, 32, []),  # shorter than a window: no whole chip fits
    ],
)
def test_starts_cover_the_axis_without_passing_its_edge(n, size, stride, expected):
    starts = window_starts(n, size, stride)
    assert starts == expected
    if starts:  # closed form: ceil((n - size) / stride) + 1 windows, the last at n - size
        assert len(starts) == -(-(n - size) // stride) + 1
        assert starts[-1] == n - size


def test_a_short_axis_gets_one_padded_window_when_asked():
    assert window_starts(31, 32, 32, pad_short=True) == [0]
    assert window_starts(5, 256, 224, pad_short=True) == [0]
    assert window_starts(100, 32, 32, pad_short=True) == window_starts(100, 32, 32)


@pytest.mark.parametrize(
    ("n", "largest", "overlap", "expected"),
    [
        (2048, 1024, 64, 736),  # 3 windows: 3 * 736 - 2 * 64 = 2080 >= 2048
        (2048, 1088, 64, 1056),  # 2 windows: 2 * 1056 - 64 = 2048, flush
        (10980, 1024, 64, 992),  # 12 windows of a Sentinel-2 tile
        (648, 1024, 32, 672),  # one window, padded by 24 (a CWFID image at half resolution)
        (483, 1024, 32, 512),
        (512, 512, 64, 512),  # exactly one window
        (513, 512, 64, 320),  # two windows: 2 * 320 - 64 = 576 >= 513
    ],
)
def test_window_size_known_values(n, largest, overlap, expected):
    assert window_size(n, largest, overlap, 32) == expected


@pytest.mark.parametrize("overlap", [0, 16, 64])
@pytest.mark.parametrize("largest", [256, 512, 1024])
def test_fitted_windows_are_the_fewest_that_cover_the_axis(largest, overlap):
    for n in range(1, 5000, 37):
        size = window_size(n, largest, overlap, 32)
        assert size % 32 == 0 and size <= largest
        starts = window_starts(n, size, size - overlap, pad_short=True)
        # the fewest windows of the largest size that overlap by `overlap` and cover n pixels
        fewest = max(1, -(-(n - overlap) // (largest - overlap)))
        assert len(starts) == fewest
        assert starts[-1] + size >= n
        # neighbours overlap by at least the blending ramp
        assert all(b - a <= size - overlap for a, b in pairwise(starts))

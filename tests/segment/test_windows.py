"""Window starts along an axis: a regular grid plus one window flush with the far edge."""

import pytest

from agrivision.segment.windows import window_starts


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

"""Field windows: chunk rows read as views, windows moved to a smaller canvas and back."""

from __future__ import annotations

import numpy as np

from agrivision.fields.windows import PackedWindows, Rows


def test_rows_read_rectangles_across_blocks_like_one_array():
    whole = np.arange(2 * 10 * 7, dtype=np.float32).reshape(2, 10, 7)
    rows = Rows((whole[:, :3], whole[:, 3:8], whole[:, 8:]))
    assert rows.shape == whole.shape and rows.dtype == whole.dtype
    for r0, r1, c0, c1 in [(0, 10, 0, 7), (2, 9, 1, 4), (4, 6, 2, 3), (8, 10, 0, 1)]:
        np.testing.assert_array_equal(rows.rect(r0, r1, c0, c1), whole[:, r0:r1, c0:c1])
    assert np.shares_memory(rows.rect(4, 6, 0, 7), whole)  # inside one block: no copy


def test_gathered_windows_hold_only_those_fields_and_go_back_in_place():
    # three fields' windows on a canvas, one empty pixel between them
    owner = np.zeros((6, 12), np.int32)
    owner[0:4, 0:3], owner[0:6, 4:8], owner[0:2, 9:12] = 1, 2, 3
    owner[0, 0] = 0  # a window pixel the field does not touch
    windows = np.array([[0, 4, 0, 3], [0, 6, 4, 8], [0, 2, 9, 12]])
    packed = PackedWindows(None, owner, owner > 0, np.zeros((3, 2), np.int64), windows)
    moved = packed.gather(np.array([1, 3]))
    small = moved.take(owner)
    assert small.size < owner.size
    assert np.bincount(small.ravel(), minlength=4).tolist()[1:] == [11, 0, 6]
    # a value per pixel of the small canvas, put back where field 3 is
    canvas = np.zeros_like(owner)
    moved.put(canvas, small * 10, small == 3)
    np.testing.assert_array_equal(canvas, np.where(owner == 3, 30, 0))

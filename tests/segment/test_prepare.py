"""Input preparation shared by training and inference."""

from __future__ import annotations

import numpy as np
import torch

from agrivision.segment.prepare import NODATA, normalise, pool, pool_labels


def test_pool_averages_valid_pixels_and_partial_edge_blocks():
    x = torch.arange(20, dtype=torch.float32).reshape(1, 4, 5)
    x[0, 0, 0] = float("nan")
    x[0, 2:4, 2:4] = float("nan")
    got = pool(x, 2)[0]
    # blocks (rows 0-1, cols 0-1): 1, 5, 6 valid; the last column is a partial block
    expected = torch.tensor(
        [
            [(1 + 5 + 6) / 3, (2 + 3 + 7 + 8) / 4, (4 + 9) / 2],
            [(10 + 11 + 15 + 16) / 4, float("nan"), (14 + 19) / 2],
        ]
    )
    torch.testing.assert_close(got, expected, equal_nan=True)
    assert pool(x, 1) is x


def test_normalise_standardises_and_fills_nodata_with_zero():
    x = torch.tensor([[[0.3, float("nan")]], [[0.5, 0.7]]])
    got = normalise(x, (0.1, 0.5), (0.2, 0.1))
    torch.testing.assert_close(got, torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]]))


def test_pool_labels_majority_ignores_255_and_ties_go_low():
    lab = np.array(
        [[1, 1, 2, 2, 0], [1, 2, 1, 1, 255], [255, 255, 0, 0, 2], [255, 255, 2, 2, 2]], np.uint8
    )
    got = pool_labels(lab, 2, 3)
    np.testing.assert_array_equal(got, [[1, 1, 0], [NODATA, 0, 2]])

"""Confusion matrix and scores against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from agrivision.segment.metrics import confusion, scores


def test_confusion_and_scores_by_hand():
    truth = np.array([0, 0, 0, 1, 1, 2, 255, 2], np.uint8)
    pred = np.array([0, 0, 1, 1, 2, 2, 0, 255], np.uint8)
    cm = confusion(truth, pred, 4)
    np.testing.assert_array_equal(cm[:3, :3], [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    s = scores(cm, ["soil", "crop", "weed", "unused"])
    # IoU = tp / (tp + fp + fn): soil 2/3, crop 1/3, weed 1/2; unused never occurs
    assert s["iou"] == pytest.approx({"soil": 2 / 3, "crop": 1 / 3, "weed": 1 / 2, "unused": None})
    assert s["f1"]["crop"] == pytest.approx(2 / (2 + 1 + 1))
    assert s["miou"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3)
    assert s["accuracy"] == pytest.approx(4 / 6)


def test_codes_beyond_the_classes_are_an_error():
    with pytest.raises(ValueError):
        confusion(np.array([3], np.uint8), np.array([0], np.uint8), 3)

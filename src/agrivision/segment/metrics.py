"""Segmentation scores from a confusion matrix: per-class IoU and F1, mIoU, accuracy."""

from __future__ import annotations

import numpy as np

from agrivision.segment.nodata import NODATA


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(K, K)`` pixel counts, rows = true class, columns = predicted class.

    Pixels whose truth or prediction is 255 (ignored / nodata) are not counted.
    """
    keep = (truth != NODATA) & (pred != NODATA)
    t = truth[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    if t.size and (t.max() >= n_classes or p.max() >= n_classes):
        raise ValueError(f"class codes must be < {n_classes}")
    return np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)


def scores(cm: np.ndarray, names: tuple[str, ...] | list[str]) -> dict:
    """IoU and F1 per class, their means over classes that occur, accuracy, the matrix.

    A class absent from both truth and prediction has IoU/F1 ``None`` and is left out of the
    means.
    """
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    union = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(union > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    total = cm.sum()
    return {
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else None,
        "mf1": float(np.nanmean(f1)) if np.isfinite(f1).any() else None,
        "accuracy": float(tp.sum() / total) if total else None,
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)},
        "f1": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, f1, strict=True)},
        "confusion": cm.astype(int).tolist(),
    }

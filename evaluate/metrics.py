"""Segmentation metrics from one global confusion matrix (pure numpy).

Sen1Floods11 practice: pixels labelled -1 (no data) are ignored, and the confusion matrix is
accumulated over the whole test split before any ratio is taken. Averaging per-patch IoUs
instead over-weights small patches and patches with little water, and is undefined for patches
without the class. ``cm[i, j]`` counts pixels of true class ``i`` predicted as ``j``.
"""

from __future__ import annotations

import numpy as np

IGNORE = -1


def confusion_matrix(y_true, y_pred, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """Confusion matrix [num_classes, num_classes] (int64) of one batch; ``ignore`` pixels skipped."""
    t = np.asarray(y_true).ravel().astype(np.int64)
    p = np.asarray(y_pred).ravel().astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} pixels but y_pred has {p.size}")
    keep = t != ignore
    t, p = t[keep], p[keep]
    bad = (t < 0) | (t >= num_classes) | (p < 0) | (p >= num_classes)
    if bad.any():
        raise ValueError(f"class ids outside [0, {num_classes}) other than ignore={ignore}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class ConfusionMatrix:
    """Streaming accumulator: ``update`` batch after batch, ``result`` is the global matrix."""

    def __init__(self, num_classes: int, ignore: int = IGNORE):
        self.num_classes, self.ignore = num_classes, ignore
        self.cm = np.zeros((num_classes, num_classes), np.int64)

    def update(self, y_true, y_pred) -> "ConfusionMatrix":
        self.cm += confusion_matrix(y_true, y_pred, self.num_classes, self.ignore)
        return self

    def result(self) -> np.ndarray:
        return self.cm.copy()


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (the class never occurs and is never predicted)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_per_class(cm) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class; NaN for a class absent from truth and prediction."""
    cm = np.asarray(cm)
    tp = np.diag(cm)
    return _ratio(tp, cm.sum(0) + cm.sum(1) - tp)


def miou(cm) -> float:
    """Mean IoU over the classes that occur (NaN classes left out)."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if not np.all(np.isnan(iou)) else float("nan")


def precision_per_class(cm) -> np.ndarray:
    """TP / predicted pixels of the class."""
    cm = np.asarray(cm)
    return _ratio(np.diag(cm), cm.sum(0))


def recall_per_class(cm) -> np.ndarray:
    """TP / true pixels of the class."""
    cm = np.asarray(cm)
    return _ratio(np.diag(cm), cm.sum(1))


def pixel_accuracy(cm) -> float:
    """Correct labelled pixels / labelled pixels."""
    cm = np.asarray(cm)
    return float(_ratio(np.trace(cm), cm.sum()))


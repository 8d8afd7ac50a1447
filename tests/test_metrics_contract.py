"""evaluate/metrics.py edges (issue 12, mutation check): mismatched sizes either way, each kind
of out-of-range class id, a custom ignore value, and a result the caller may not alter."""

import numpy as np
import pytest

from senclr.evaluate import metrics


@pytest.mark.parametrize("y_true, y_pred", [([0, 1], [0]), ([0], [0, 1]), ([[0, 1]], [[0], [1], [1]])])
def test_sizes_that_differ_either_way_raise(y_true, y_pred):
    with pytest.raises(ValueError, match="pixels"):
        metrics.confusion_matrix(y_true, y_pred, 2)


@pytest.mark.parametrize("y_true, y_pred", [([-2, 0], [0, 0]), ([2, 0], [0, 0]), ([0, 0], [-1, 0]), ([0, 0], [0, 2]),
                                            ([2, 0], [-1, 0]), ([-2, 0], [2, 0]),  # two wrong at once
                                            ([0, 0], [0, 3]), ([3, 0], [0, 0])])  # past the edge: t * n + p still fits
def test_each_out_of_range_class_id_raises(y_true, y_pred):
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        metrics.confusion_matrix(y_true, y_pred, 2)


def test_a_custom_ignore_value_and_the_edges_of_the_class_range():
    cm = metrics.confusion_matrix([255, 0, 2, 2], [1, 0, 2, 1], 3, ignore=255)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    with pytest.raises(ValueError):
        metrics.confusion_matrix([-1, 0], [0, 0], 3, ignore=255)  # -1 is only ignored by default


def test_result_is_a_copy_and_precision_recall_accuracy_use_the_right_axes():
    acc = metrics.ConfusionMatrix(2).update([0, 0, 0, 1], [0, 1, 1, 1])
    cm = acc.result()
    cm[0, 0] = 99
    assert acc.result().tolist() == [[1, 2], [0, 1]]
    cm = acc.result()
    np.testing.assert_allclose(metrics.precision_per_class(cm), [1.0, 1 / 3])
    np.testing.assert_allclose(metrics.recall_per_class(cm), [1 / 3, 1.0])
    assert metrics.pixel_accuracy(cm) == 0.5
    assert np.isnan(metrics.pixel_accuracy(np.zeros((2, 2), int)))

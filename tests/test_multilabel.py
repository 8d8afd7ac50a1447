"""Multi-label metrics against values computed by hand (in the comments)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from senclr.evaluate.multilabel import average_precision, multilabel_metrics


def test_ap_steps_over_ranked_scores():
    # ranked: + - + -  -> (R, P) = (.5, 1), (.5, .5), (1, 2/3), (1, .5)
    # AP = .5 * 1 + 0 + .5 * 2/3 + 0 = 5/6
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)


def test_ap_perfect_and_inverted_rankings():
    assert average_precision([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == pytest.approx(1.0)
    # ranked: - - + +  -> (R, P) = (.5, 1/3) then (1, 1/2): AP = .5/3 + .5/2 = 5/12
    assert average_precision([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(5 / 12)
    # one positive ranked last of three: AP = 1/3
    assert average_precision([0, 0, 1], [0.9, 0.8, 0.1]) == pytest.approx(1 / 3)


def test_ap_takes_tied_scores_as_one_threshold():
    # groups: {0.9: +} -> (R, P) = (.5, 1); {0.6: -, +, -} -> (1, 2/4); {0.2: -}
    # AP = .5 * 1 + .5 * .5 = .75, whatever order the tied items come in
    y, s = np.array([1, 0, 1, 0, 0]), np.array([0.9, 0.6, 0.6, 0.6, 0.2])
    assert average_precision(y, s) == pytest.approx(0.75)
    assert average_precision(y[::-1], s[::-1]) == pytest.approx(0.75)
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # one group: P = 1/2 at R = 1


def test_ap_without_positives_is_nan():
    assert np.isnan(average_precision([0, 0, 0], [0.3, 0.2, 0.1]))


# 4 samples x 4 classes; class 2 has no positive but one prediction, class 3 neither.
Y = np.array([[1, 0, 0, 0],
              [0, 1, 0, 0],
              [1, 1, 0, 0],
              [0, 0, 0, 0]])
S = np.array([[0.9, 0.2, 0.7, 0.1],
              [0.4, 0.8, 0.1, 0.2],
              [0.6, 0.3, 0.2, 0.3],
              [0.1, 0.6, 0.3, 0.4]])


def test_multilabel_metrics_by_hand():
    m = multilabel_metrics(Y, S)
    # class 0: ranked + + - -  -> AP 1
    # class 1: y 0 1 1 0, s .2 .8 .3 .6 -> ranked + - + -  -> AP = .5 + .5 * 2/3 = 5/6
    # classes 2, 3: no positives -> undefined, left out of the macro mean
    assert m["per_class_ap"][:2] == pytest.approx([1.0, 5 / 6])
    assert m["per_class_ap"][2:] == [None, None]
    assert m["macro_map"] == pytest.approx((1 + 5 / 6) / 2)
    # micro: 16 cells, positives at .9 .8 .6 .3; groups from the top (tp, seen):
    # .9 (1,1) .8 (2,2) .7 (2,3) .6 (3,5) .4 (3,7) .3 (4,10)
    # AP = .25 * 1 + .25 * 1 + .25 * 3/5 + .25 * 4/10 = .75
    assert m["micro_map"] == pytest.approx(0.75)
    # predictions s >= .5: class 0 TP2 FP0 FN0 -> F1 1; class 1 TP1 FP1 FN1 -> 2/4;
    # class 2 TP0 FP1 FN0 -> 0 (counts); class 3 nothing present or predicted -> undefined
    assert m["per_class_f1"] == [pytest.approx(1.0), pytest.approx(0.5), 0.0, None]
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))  # TP3 FP2 FN1
    assert m["positives"] == [2, 2, 0, 0]
    json.dumps(m, allow_nan=False)


def test_threshold_is_inclusive():
    m = multilabel_metrics([[1], [0]], [[0.5], [0.49]])
    assert m["per_class_f1"] == [1.0]
    assert multilabel_metrics([[1], [0]], [[0.5], [0.49]], threshold=0.6)["per_class_f1"] == [0.0]


def test_nothing_defined_gives_none():
    m = multilabel_metrics([[0, 0]], [[0.1, 0.2]])
    assert (m["micro_map"], m["macro_map"], m["micro_f1"], m["macro_f1"]) == (None, None, None, None)


@pytest.mark.parametrize("y, s", [([1, 0], [0.1, 0.2]), ([[1, 0]], [[0.1]]), ([[2, 0]], [[0.1, 0.2]]),
                                  ([[1, 0]], [[np.nan, 0.2]])])
def test_bad_inputs(y, s):
    with pytest.raises(ValueError):
        multilabel_metrics(y, s)

"""Tests for ptuning/tasks/metrics.py against values worked out by hand (the working is in comments)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ptuning.tasks.metrics import accuracy, compute_metrics, f1, matthews_corrcoef, pearson, spearman

PREDICTIONS = [0, 1, 1, 0, 1]
LABELS = [0, 1, 0, 0, 0]


def test_accuracy():
    # equal at positions 0, 1, 3 -> 3 / 5
    assert accuracy(PREDICTIONS, LABELS) == pytest.approx(0.6)


def test_f1():
    # TP = 1 (position 1), FP = 2 (positions 2, 4), FN = 0 -> 2*1 / (2*1 + 2 + 0) = 0.5
    # (precision 1/3, recall 1: 2 * 1/3 * 1 / (1/3 + 1) = 0.5)
    assert f1(PREDICTIONS, LABELS) == pytest.approx(0.5)
    assert f1([0, 0], [0, 0]) == 0.0   # no positives anywhere: undefined -> 0.0


def test_matthews_corrcoef_binary():
    # predictions [1,1,0,0,1,0] vs labels [1,0,0,0,1,1]:
    # TP = 2 (0, 4), FP = 1 (1), TN = 2 (2, 3), FN = 1 (5)
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (4 - 1) / sqrt(3*3*3*3) = 1/3
    assert matthews_corrcoef([1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 1]) == pytest.approx(1 / 3)
    assert matthews_corrcoef([0, 1, 1], [0, 1, 1]) == pytest.approx(1.0)
    assert matthews_corrcoef([1, 0, 0], [0, 1, 1]) == pytest.approx(-1.0)


def test_matthews_corrcoef_undefined_is_zero():
    # constant predictions: TN + FN = 0, the denominator vanishes
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0
    assert matthews_corrcoef([0, 0], [0, 0]) == 0.0


def test_matthews_corrcoef_three_classes():
    # labels [0,1,2,0], predictions [0,1,1,0]: true counts t = [2,1,1], predicted p = [2,2,0],
    # correct c = 3, total s = 4: (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t))
    # = (12 - 6) / sqrt((16 - 8)(16 - 6)) = 6 / sqrt(80)
    assert matthews_corrcoef([0, 1, 1, 0], [0, 1, 2, 0]) == pytest.approx(6 / math.sqrt(80))


def test_pearson():
    # x = [1,2,3], y = [1,2,4]: deviations [-1,0,1] and [-4/3,-1/3,5/3]
    # sum of products = 4/3 + 5/3 = 3; sums of squares 2 and 42/9 -> 3 / sqrt(2 * 42/9)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0   # constant input: undefined -> 0.0


def test_spearman_with_ties():
    # ranks of x = [1,2,2,3] are [1, 2.5, 2.5, 4] (the tie shares ranks 2 and 3); of y = [1,3,2,4]
    # they are [1,3,2,4]. Deviations from 2.5: [-1.5,0,0,1.5] and [-1.5,.5,-.5,1.5]
    # -> 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3, 4], np.exp([1, 2, 3, 4])) == pytest.approx(1.0)   # monotone


def test_compute_metrics_on_logits():
    # argmax -> [0, 1, 0, 1] vs [0, 1, 1, 1]: accuracy 3/4; TP 2, FP 0, FN 1 -> F1 4/5
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.1, 0.2]])
    result = compute_metrics(("accuracy", "f1"), logits, np.array([0, 1, 1, 1]))
    assert result == pytest.approx({"accuracy": 0.75, "f1": 0.8})
    assert all(isinstance(value, float) for value in result.values())


def test_compute_metrics_on_regression():
    # (N, 1) is squeezed to (N,); pearson as in test_pearson, ranks identical -> spearman 1
    result = compute_metrics(("pearson", "spearman"), np.array([[1.0], [2.0], [3.0]]), [1, 2, 4])
    assert result == pytest.approx({"pearson": 3 / math.sqrt(2 * 42 / 9), "spearman": 1.0})
    flat = compute_metrics(["pearson"], np.array([1.0, 2.0, 3.0]), [1, 2, 4])
    assert flat["pearson"] == pytest.approx(result["pearson"])


def test_bad_input():
    with pytest.raises(ValueError, match="unknown metric"):
        compute_metrics(["bleu"], np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="equal length"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        pearson([], [])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=30))
def test_mcc_is_symmetric_and_bounded(pairs):
    predictions, labels = zip(*pairs)
    value = matthews_corrcoef(predictions, labels)
    assert -1.0 - 1e-12 <= value <= 1.0 + 1e-12
    assert value == pytest.approx(matthews_corrcoef(labels, predictions))

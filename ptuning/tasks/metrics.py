"""GLUE metrics in plain numpy, each a few lines of its textbook formula.

Where a metric is undefined (constant predictions, no positives at all) it is 0.0 rather than
NaN, so that "keep the best checkpoint" comparisons early in training stay meaningful.
"""
from __future__ import annotations

import numpy as np


def accuracy(predictions, labels) -> float:
    predictions, labels = _pair(predictions, labels)
    return float(np.mean(predictions == labels))


def f1(predictions, labels) -> float:
    """Binary F1 of the positive class 1: 2 TP / (2 TP + FP + FN)."""
    predictions, labels = _pair(predictions, labels)
    true_positive = np.sum((predictions == 1) & (labels == 1))
    false_positive = np.sum((predictions == 1) & (labels != 1))
    false_negative = np.sum((predictions != 1) & (labels == 1))
    denominator = 2 * true_positive + false_positive + false_negative
    return float(2 * true_positive / denominator) if denominator else 0.0


def matthews_corrcoef(predictions, labels) -> float:
    """MCC from the confusion matrix (Gorodkin's multi-class form; the usual one for 2 classes)."""
    predictions, labels = _pair(predictions, labels)
    classes, encoded = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    true_index, predicted_index = encoded[:len(labels)], encoded[len(labels):]
    confusion = np.zeros((len(classes), len(classes)))
    np.add.at(confusion, (true_index, predicted_index), 1)
    total, correct = confusion.sum(), np.trace(confusion)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    numerator = correct * total - true_counts @ predicted_counts
    denominator = np.sqrt((total**2 - predicted_counts @ predicted_counts)
                          * (total**2 - true_counts @ true_counts))
    return float(numerator / denominator) if denominator else 0.0


def pearson(x, y) -> float:
    x, y = _pair(x, y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else 0.0


def spearman(x, y) -> float:
    """Pearson correlation of the ranks; tied values share their average rank."""
    x, y = _pair(x, y, dtype=np.float64)
    return pearson(_average_ranks(x), _average_ranks(y))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    # 1-based ranks; e.g. [10, 20, 20, 30] -> [1, 2.5, 2.5, 4].
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    return (first_rank + (counts - 1) / 2)[inverse]


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef,
           "pearson": pearson, "spearman": spearman}


def compute_metrics(metric_names, predictions, labels) -> dict[str, float]:
    """Score model outputs: logits (N, C) are turned into class ids by argmax; regression
    outputs (N,) or (N, 1) are used as they are."""
    predictions = np.asarray(predictions)
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        predictions = predictions.argmax(axis=1)
    elif predictions.ndim == 2:
        predictions = predictions[:, 0]
    unknown = [name for name in metric_names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return {name: METRICS[name](predictions, labels) for name in metric_names}


def _pair(predictions, labels, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions, dtype), np.asarray(labels, dtype)
    if predictions.ndim != 1 or predictions.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"need two non-empty 1-D arrays of equal length, got shapes "
                         f"{predictions.shape} and {labels.shape}")
    return predictions, labels

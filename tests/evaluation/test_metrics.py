"""Metrics against hand-computed values, including the seed's majority-class collapse."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moola.evaluation.metrics import (
    brier_score,
    classification_metrics,
    degeneracy,
    expected_calibration_error,
    majority_predictions,
    positive_index,
    pr_auc,
)

CLASSES = ["consolidation", "retracement"]


def seed_collapse():
    """Validation 14/6; the model always answers the majority with probabilities near 0.5."""
    y_val = ["consolidation"] * 14 + ["retracement"] * 6
    y_train = ["consolidation"] * 42 + ["retracement"] * 36
    pred = ["consolidation"] * 20
    proba = np.tile([0.5, 0.5], (20, 1))
    return y_val, y_train, pred, proba


def test_seed_collapse_numbers():
    y_val, y_train, pred, proba = seed_collapse()
    pos = positive_index(CLASSES, y_train, None)
    assert CLASSES[pos] == "retracement"  # the train minority
    m = classification_metrics(y_val, pred, proba, CLASSES, pos)
    assert m["accuracy"] == pytest.approx(0.700)
    assert m["f1_weighted"] == pytest.approx(0.7 * (2 * 0.7 / 1.7))  # 0.5765
    assert round(m["f1_weighted"], 3) == 0.576
    assert m["pr_auc"] == pytest.approx(0.300)
    assert m["brier"] == pytest.approx(0.250)
    # the original logged ECE 0.000 (bins dropped by calibration_curve); the truth is 0.2
    assert m["ece"] == pytest.approx(0.2)
    assert m["confusion"] == [[14, 0], [6, 0]]
    mpred, mproba = majority_predictions(y_train, CLASSES, 20)
    maj = classification_metrics(y_val, mpred, mproba, CLASSES, pos)
    degenerate, reasons = degeneracy(m, maj)
    assert degenerate
    assert any("single class" in r for r in reasons) and any("does not beat" in r for r in reasons)


def test_ece_hand_computed_with_empty_bins():
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # bin (0.867, 0.933]: acc 0.5, conf 0.9 -> 0.5 * 0.4; bin (0.533, 0.6]: acc 1.0, conf 0.6 -> 0.5 * 0.4
    assert expected_calibration_error(y, proba) == pytest.approx(0.4)
    assert expected_calibration_error(np.array([0, 0]), np.array([[1.0, 0.0], [1.0, 0.0]])) == 0.0


def test_brier_full_vector_multiclass():
    assert brier_score(np.array([0]), np.array([[0.7, 0.2, 0.1]])) == pytest.approx((0.09 + 0.04 + 0.01) / 2)
    assert brier_score(np.array([1, 0]), np.array([[0.0, 1.0], [1.0, 0.0]])) == 0.0


def test_pr_auc_binary_and_weighted_multiclass():
    assert pr_auc(np.array([0, 1, 1, 0]), np.array([[.9, .1], [.2, .8], [.3, .7], [.6, .4]]), 1) == 1.0
    # one mis-ranked positive: AP = (1/1 + 2/3) / 2 for the positive class
    assert pr_auc(np.array([1, 0, 1]), np.array([[.1, .9], [.2, .8], [.3, .7]]), 1) == pytest.approx((1 + 2 / 3) / 2)
    y = np.array([0, 1, 2, 2])
    perfect = np.eye(3)[y] * 0.8 + 0.2 / 3
    assert pr_auc(y, perfect, None) == pytest.approx(1.0)


def test_multiclass_metrics_and_log_loss():
    classes = ["a", "b", "c"]
    y = ["a", "b", "c", "c"]
    proba = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.6, .2, .2]])
    pred = ["a", "b", "c", "a"]
    m = classification_metrics(y, pred, proba, classes, None)
    assert m["accuracy"] == 0.75
    assert m["log_loss"] == pytest.approx(-(3 * math.log(.8) + math.log(.2)) / 4)
    assert m["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert m["predicted_classes"] == ["a", "b", "c"]



"""The control's model: one temperature on the ridge scores keeps the ridge's own predictions,
recovers a known temperature, and no scaler sits between MiniRocket and the ridge."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from moola.models.minirocket import _logits, fit_minirocket, fit_temperature


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (4000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(2.5 * z, axis=1)])
    assert fit_temperature(z, y) == pytest.approx(2.5, rel=0.1)


def test_binary_scores_become_two_logits_with_the_sigmoid():
    z = _logits(np.array([[-2.0], [0.0], [3.0]]))
    p = softmax(z, axis=1)[:, 1]
    assert np.allclose(p, 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0]))))


@pytest.mark.parametrize("k", [2, 3])
def test_predictions_are_the_ridges_and_probabilities_sum_to_one(k):
    rng = np.random.default_rng(k)
    n, t = 40, 30
    y_idx = np.arange(n) % k
    X = rng.normal(0, 1, (n, t, 1)).astype(np.float32)
    X[:, 5:15, 0] += (y_idx[:, None] - 1) * 1.5           # a class-dependent bump
    classes = [f"c{i}" for i in range(k)]
    y = [classes[i] for i in y_idx]
    m = fit_minirocket(X[:30], y[:30], classes, seed=0, num_kernels=200)
    p = m.predict_proba(X[30:])
    assert p.shape == (10, k) and np.allclose(p.sum(axis=1), 1.0)
    ridge = m.ridge.predict(m.transformer.transform(m._panel(X[30:])))
    assert m.predict(X[30:]) == list(ridge)
    assert m.temperature > 0
    assert not hasattr(m, "scaler")

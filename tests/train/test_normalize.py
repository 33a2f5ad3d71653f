"""Per-window normalisation: ohlc_window makes every window the same scale and keeps the
channels' order."""

from __future__ import annotations

import numpy as np

from moola.data.sample import make_sample
from moola.train.normalize import fit_normalizer, resolve_method


def test_ohlc_window_is_scale_free_standardised_and_keeps_channel_order():
    lab, _ = make_sample(seed=3, n_labeled=10, n_unlabeled=0)
    X = lab["X"]
    assert resolve_method("auto", 4) == "ohlc_window" and resolve_method("auto", 1) == "zscore"
    norm = fit_normalizer(X, "ohlc_window")
    Z = norm.transform(X)
    assert norm.scale == 1.0
    assert np.allclose(Z.mean(axis=(1, 2)), 0, atol=1e-5) and np.allclose(Z.std(axis=(1, 2)), 1, atol=1e-4)
    assert np.allclose(norm.transform(X * 7.5), Z, atol=1e-4)  # the price level does not matter
    # a window twice as volatile (log-returns doubled) looks the same: shape, not scale
    rel = np.log(X / X[:, :1, :1])
    assert np.allclose(norm.transform(X[:, :1, :1] * np.exp(2 * rel)), Z, atol=1e-4)
    high, low, close = Z[..., 1], Z[..., 2], Z[..., 3]
    assert (high >= close - 1e-6).all() and (low <= close + 1e-6).all()

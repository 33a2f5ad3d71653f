"""Paired evidence between two models scored on the same windows, as pure functions.

- ``paired_evidence``: the paired bootstrap of B - A for weighted F1 and for the Brier score
  (one set of resamples for both, so the two intervals describe the same draws), the point
  values of F1, Brier and PR-AUC for each model, and the exact McNemar test on correctness;
- ``mcnemar_exact``: two-sided exact (binomial) McNemar p-value from the discordant counts;
- ``holm``: Holm's step-down over several one-sided p-values (family-wise error <= alpha).

Windows are resampled with replacement (a percentile bootstrap): the intervals say how much
the difference could move with another draw of windows like these, with both models fixed.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .metrics import brier_score, pr_auc


def _onehot(idx: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[np.asarray(idx, dtype=int)]


def weighted_f1_rows(y: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Weighted F1 (sklearn's ``average="weighted"``, zero_division=0) under each row of
    ``weights`` (B, n): window i counted ``weights[b, i]`` times in resample b."""
    t, p = _onehot(y, k), _onehot(pred, k)
    tp = weights @ (t * p)
    support = weights @ t
    predicted = weights @ p
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = support.sum(axis=1)
    return np.divide((support * f1).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)


def brier_rows(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per-window Brier score (sum over classes of the squared error, halved: moola.metrics)."""
    return ((proba - _onehot(y, proba.shape[1])) ** 2).sum(axis=1) / 2


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: ``a_only`` windows only A got right, ``b_only`` only B.
    Under H0 each discordant window is a fair coin; p = 2 * P(X <= min) for X ~ Bin(n, 1/2)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


def paired_evidence(y: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, positive: int | None = None,
                    margin: float = 0.0, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict:
    """B against A on the same windows. ``y``: true class indices (n,); ``proba_*``: (n, K).

    Returns point values, the (1 - alpha) percentile interval of each difference, and
    ``p_not_above_margin``: the one-sided bootstrap p-value of "B's F1 exceeds A's by at most
    ``margin``" (the share of resamples where it does, with the usual +1 correction)."""
    y = np.asarray(y, dtype=int)
    n, k = len(y), proba_a.shape[1]
    pred_a, pred_b = proba_a.argmax(axis=1), proba_b.argmax(axis=1)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    ones = np.ones((1, n))
    f1_a, f1_b = (weighted_f1_rows(y, p, k, ones)[0] for p in (pred_a, pred_b))
    df1 = weighted_f1_rows(y, pred_b, k, weights) - weighted_f1_rows(y, pred_a, k, weights)
    dbrier = weights @ (brier_rows(y, proba_b) - brier_rows(y, proba_a)) / n
    lo, hi = alpha / 2, 1 - alpha / 2
    right_a, right_b = pred_a == y, pred_b == y
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    pr_a, pr_b = (pr_auc(y, p, positive) for p in (proba_a, proba_b))
    return {
        "n": n, "n_boot": n_boot, "confidence": 1 - alpha, "margin": margin,
        "f1_weighted": {"a": float(f1_a), "b": float(f1_b), "diff": float(f1_b - f1_a),
                        "ci_low": float(np.quantile(df1, lo)), "ci_high": float(np.quantile(df1, hi))},
        "brier": {"a": brier_score(y, proba_a), "b": brier_score(y, proba_b),
                  "diff": brier_score(y, proba_b) - brier_score(y, proba_a),
                  "ci_low": float(np.quantile(dbrier, lo)), "ci_high": float(np.quantile(dbrier, hi))},
        "pr_auc": {"a": _finite(pr_a), "b": _finite(pr_b),
                   "diff": _finite(pr_b - pr_a)},
        "p_not_above_margin": float((1 + (df1 <= margin).sum()) / (n_boot + 1)),
        "mcnemar": {"a_only": a_only, "b_only": b_only, "p": mcnemar_exact(a_only, b_only)},
    }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def holm(pvalues: dict[str, float], alpha: float) -> dict[str, bool]:
    """Holm's step-down: sort ascending, reject the r-th smallest (from 0) while p <= alpha/(m-r);
    the first that fails stops it. Returns name -> rejected."""
    m = len(pvalues)
    out = {name: False for name in pvalues}
    for r, (name, p) in enumerate(sorted(pvalues.items(), key=lambda kv: kv[1])):
        if p > alpha / (m - r):
            break
        out[name] = True
    return out


def holm_level(pvalues: dict[str, float], name: str, alpha: float) -> float:
    """The level ``name``'s p-value was held to by Holm (alpha/(m - its rank))."""
    order = sorted(pvalues, key=lambda n: pvalues[n])
    return alpha / (len(pvalues) - order.index(name))


def interval(e: dict, key: str = "f1_weighted") -> str:
    """A paired_evidence difference in words: '+0.030, 95% CI [-0.120, +0.180] on 60 windows'."""
    m = e[key]
    return (f"{m['diff']:+.3f}, {e['confidence']:.0%} CI [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}] "
            f"on {e['n']} windows")

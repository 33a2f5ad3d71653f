"""Paired evidence between two models scored on the same windows, as pure functions.

- ``paired_evidence``: B - A for weighted F1, the Brier score and PR-AUC: a paired bootstrap
  interval for each (one set of resamples for all three, so the intervals describe the same
  draws), the sign-flip permutation p-value of the F1 difference, the exact McNemar test on
  correctness, and the smallest difference these windows can detect;
- ``sign_flip_p``: the one-sided permutation test of "B's F1 is no better than A's": under
  that null the two models' predictions are exchangeable window by window (group by group), so
  swapping them on any subset is as likely as the observed assignment. Exact (every swap
  enumerated) when few groups disagree, which is when the bootstrap is anti-conservative;
- ``mcnemar_exact``: two-sided exact (binomial) McNemar p-value from the discordant counts;
- ``holm``: Holm's step-down over several one-sided p-values (family-wise error <= alpha).

Resampling and swapping are by group when ``groups`` is given (the data's ``base_window``: two
windows of one day share its market and are not independent); one window per group otherwise.
The bootstrap intervals say how much a difference could move with another draw of groups like
these, with both models fixed.
"""

from __future__ import annotations

from math import ceil
from statistics import NormalDist

import numpy as np
from scipy.stats import binomtest

from moola.evaluation.metrics import brier_score, pr_auc
from moola.evaluation.paired import Detectable, Detectables, Difference, McNemar, PairedEvidence

# power the smallest detectable difference is quoted at (the usual 80%)
POWER = 0.80
# swaps enumerated exactly up to this many disagreeing groups (2**14 rows); sampled beyond
EXACT_UP_TO = 14


def _onehot(idx: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[np.asarray(idx, dtype=int)]


def weighted_f1_rows(y: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Weighted F1 (sklearn's ``average="weighted"``, zero_division=0) under each row of
    ``weights`` (B, n): window i counted ``weights[b, i]`` times in resample b."""
    t, p = _onehot(y, k), _onehot(pred, k)
    return f1_from_counts(weights @ (t * p), weights @ p, weights @ t)


def f1_from_counts(tp: np.ndarray, predicted: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Weighted F1 from per-class counts (..., k): true positives, predicted, support (support
    may be one row shared by all, as under swaps, where the labels do not move)."""
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(np.broadcast(tp, denom).shape), where=denom > 0)
    total = np.asarray(support.sum(axis=-1), dtype=float)
    return np.divide((f1 * support).sum(axis=-1), total, out=np.zeros(np.broadcast(f1[..., 0], total).shape),
                     where=total > 0)


def brier_rows(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per-window Brier score (sum over classes of the squared error, halved: moola.evaluation.metrics)."""
    return ((proba - _onehot(y, proba.shape[1])) ** 2).sum(axis=1) / 2


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: ``a_only`` windows only A got right, ``b_only`` only B.
    Under H0 each discordant window is a fair coin: scipy's exact binomial test of the smaller
    count against Bin(n, 1/2) (two-sided; symmetric, so 2 * P(X <= min), at most 1)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    return float(binomtest(min(a_only, b_only), n, 0.5).pvalue)


def group_codes(groups, n: int) -> np.ndarray:
    """Integer group per window (0..G-1); every window its own group when ``groups`` is None."""
    if groups is None:
        return np.arange(n)
    return np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1].reshape(-1)


def bootstrap_weights(codes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) counts: groups drawn with replacement, each window counted as often as its group."""
    g = int(codes.max()) + 1 if len(codes) else 0
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot).astype(float)
    return counts[:, codes]


def sign_flip_p(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, k: int, codes: np.ndarray,
                n_perm: int = 9999, seed: int = 0) -> tuple[float, bool]:
    """One-sided p of "B's weighted F1 is no better than A's" and whether it is exact.

    A swap exchanges A's and B's predictions on every window of a group; the p-value is the
    share of swap patterns whose F1 difference reaches the observed one. Only groups where the
    models disagree change anything, so with m of them the 2**m patterns are enumerated
    (m <= EXACT_UP_TO); beyond that ``n_perm`` random patterns, with the usual +1 correction.
    4 windows where only B is right and none the other way: p = 1/16."""
    t, pa, pb = _onehot(y, k), _onehot(pred_a, k), _onehot(pred_b, k)
    support = t.sum(axis=0)
    d_tp, d_pred = (pb - pa) * t, pb - pa
    differ = np.unique(codes[(pa != pb).any(axis=1)])
    if not len(differ):
        return 1.0, True
    where = {c: j for j, c in enumerate(differ)}
    u_tp, u_pred = np.zeros((len(differ), k)), np.zeros((len(differ), k))
    for i in np.flatnonzero((pa != pb).any(axis=1)):
        u_tp[where[codes[i]]] += d_tp[i]
        u_pred[where[codes[i]]] += d_pred[i]
    m = len(differ)
    exact = m <= EXACT_UP_TO
    if exact:
        swaps = ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1).astype(float)
    else:
        swaps = np.random.default_rng(seed).integers(0, 2, (n_perm, m)).astype(float)
    tp_a, tp_b = (pa * t).sum(axis=0), (pb * t).sum(axis=0)
    pr_a, pr_b = pa.sum(axis=0), pb.sum(axis=0)
    diff = (f1_from_counts(tp_b - swaps @ u_tp, pr_b - swaps @ u_pred, support)
            - f1_from_counts(tp_a + swaps @ u_tp, pr_a + swaps @ u_pred, support))
    observed = f1_from_counts(tp_b, pr_b, support) - f1_from_counts(tp_a, pr_a, support)
    hits = int((diff >= observed - 1e-12).sum())
    return (hits / len(swaps), True) if exact else ((1 + hits) / (n_perm + 1), False)


def average_precision_rows(y: np.ndarray, proba: np.ndarray, positive: int | None,
                           weights: np.ndarray) -> np.ndarray:
    """moola.evaluation.metrics.pr_auc (sklearn's average precision: binary on ``positive``, else
    support-weighted over the classes present) under each row of ``weights`` (B, n)."""
    k = proba.shape[1]
    if k == 2:
        return _ap_rows((np.asarray(y) == positive).astype(float), proba[:, positive], weights)
    t = _onehot(y, k)
    aps = np.stack([_ap_rows(t[:, c], proba[:, c], weights) for c in range(k)], axis=1)  # (B, k)
    support = weights @ t
    aps = np.where(support > 0, aps, 0.0)
    total = support.sum(axis=1)
    return np.divide((aps * support).sum(axis=1), total, out=np.full(len(total), np.nan), where=total > 0)


def _ap_rows(pos: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(-score, kind="stable")
    s = score[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # the last window of each tied score
    w = weights[:, order]
    tp = np.cumsum(w * pos[order], axis=1)[:, last]
    fp = np.cumsum(w * (1 - pos[order]), axis=1)[:, last]
    n_pos = tp[:, -1:]
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, n_pos, out=np.zeros_like(tp), where=n_pos > 0)
    ap = (np.diff(recall, axis=1, prepend=0.0) * precision).sum(axis=1)
    return np.where(n_pos[:, 0] > 0, ap, np.nan)


def _z(q: float) -> float:
    return NormalDist().inv_cdf(q)


def detectable(se: float, level: float, n: int, gain: float | None = None) -> Detectable:
    """The smallest difference a one-sided test at ``level`` detects with POWER (80%) when the
    difference's standard error is ``se`` on ``n`` windows, and the windows a ``gain`` needs
    (the standard error shrinks as 1/sqrt(n)). Never below one window's worth (1/n): a test on
    windows where the models agree everywhere cannot detect anything smaller."""
    se = max(se, 1.0 / max(n, 1))
    mde = (_z(1 - level) + _z(POWER)) * se
    if not gain:
        return Detectable(windows=n, level=level, power=POWER, difference=mde)
    return Detectable(windows=n, level=level, power=POWER, difference=mde, gain=gain,
                      windows_for_gain=int(ceil(n * (mde / gain) ** 2)))


def paired_evidence(y: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, positive: int | None = None,
                    margin: float = 0.0, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05,
                    groups=None, n_perm: int = 9999, gain: float | None = None) -> PairedEvidence:
    """B against A on the same windows. ``y``: true class indices (n,); ``proba_*``: (n, K);
    ``groups``: a group per window (resampled and swapped together) or None.

    Returns point values and the (1 - alpha) percentile interval of each difference;
    ``p_sign_flip``: the one-sided permutation p of "B's F1 is no better than A's";
    ``p_not_above_margin``: the one-sided bootstrap p of "B's F1 exceeds A's by at most
    ``margin``" (the share of resamples where it does, with the usual +1 correction);
    ``detectable``: the smallest F1 and Brier differences a one-sided test at alpha/2 detects
    with 80% power on these windows (moola.evaluation.stats.detectable)."""
    y = np.asarray(y, dtype=int)
    n, k = len(y), proba_a.shape[1]
    codes = group_codes(groups, n)
    pred_a, pred_b = proba_a.argmax(axis=1), proba_b.argmax(axis=1)
    weights = bootstrap_weights(codes, n_boot, np.random.default_rng(seed))
    ones = np.ones((1, n))
    f1_a, f1_b = (weighted_f1_rows(y, p, k, ones)[0] for p in (pred_a, pred_b))
    df1 = weighted_f1_rows(y, pred_b, k, weights) - weighted_f1_rows(y, pred_a, k, weights)
    sizes = weights.sum(axis=1)
    dbrier = weights @ (brier_rows(y, proba_b) - brier_rows(y, proba_a)) / np.maximum(sizes, 1)
    lo, hi = alpha / 2, 1 - alpha / 2
    right_a, right_b = pred_a == y, pred_b == y
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    pr_a, pr_b = (pr_auc(y, p, positive) for p in (proba_a, proba_b))
    pr_block = {"a": _finite(pr_a), "b": _finite(pr_b), "diff": _finite(pr_b - pr_a),
                "ci_low": None, "ci_high": None}
    if pr_block["diff"] is not None and (k > 2 or positive is not None):
        dpr = average_precision_rows(y, proba_b, positive, weights) - average_precision_rows(y, proba_a, positive, weights)
        dpr = dpr[np.isfinite(dpr)]
        if len(dpr):
            pr_block.update(ci_low=float(np.quantile(dpr, lo)), ci_high=float(np.quantile(dpr, hi)))
    p_flip, exact = sign_flip_p(y, pred_a, pred_b, k, codes, n_perm, seed)
    brier_a, brier_b = brier_score(y, proba_a), brier_score(y, proba_b)
    return PairedEvidence(
        n=n, groups=int(codes.max()) + 1 if n else 0, n_boot=n_boot, confidence=1 - alpha, margin=margin,
        f1_weighted=Difference(a=float(f1_a), b=float(f1_b), diff=float(f1_b - f1_a),
                               ci_low=float(np.quantile(df1, lo)), ci_high=float(np.quantile(df1, hi))),
        brier=Difference(a=brier_a, b=brier_b, diff=brier_b - brier_a,
                         ci_low=float(np.quantile(dbrier, lo)), ci_high=float(np.quantile(dbrier, hi))),
        pr_auc=Difference(**pr_block),
        p_sign_flip=p_flip, sign_flip_exact=exact,
        p_not_above_margin=float((1 + (df1 <= margin).sum()) / (n_boot + 1)),
        mcnemar=McNemar(a_only=a_only, b_only=b_only, p=mcnemar_exact(a_only, b_only)),
        detectable=Detectables(f1_weighted=detectable(float(df1.std()), alpha / 2, n, gain),
                               brier=detectable(float(dbrier.std()), alpha / 2, n)))


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

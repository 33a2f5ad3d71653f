"""Anytime-valid statistics for a stream of paired differences, as pure functions: what nightly
re-validation needs to look every night without paying for each look.

The stream is one value per group of fresh windows (a day's windows share a group), in time
order: production's Brier score minus a challenger's, each in [-1, 1] (the Brier score here is
in [0, 1]). Positive means production is worse.

- ``degradation_wealth``: a test supermartingale for "production is at most ``delta`` worse than
  the challenger, at every step" (H0: E[X_t | past] <= delta for all t). Its wealth is a running
  bet on "worse by more than delta": W_t = prod(1 + lambda_t (X_t - delta)), with lambda_t >= 0
  chosen from earlier values only. Under H0 each factor has expectation <= 1, so by Ville's
  inequality P(W ever reaches 1/alpha) <= alpha: checking every night for the whole life of a
  version costs nothing extra. The bet follows the recent mean (the last 4, 16 and 64 values,
  averaged as three equal stakes): quiet while production is healthy, fast after a drop;
- ``betting_cs``: a confidence sequence for the mean of the stream (Waudby-Smith & Ramdas 2023,
  hedged capital with the predictable plug-in bet): when the mean is stable, the intervals hold
  at every step at once with probability >= 1 - alpha. Shown with every verdict, never decisive
  (the verdict is the test above, which needs no stable mean).
"""

from __future__ import annotations

import math

import numpy as np

LOW, HIGH = -1.0, 1.0  # the range of a difference of two Brier scores in [0, 1]
RECENT = (4, 16, 64)  # the bets' memories, in values
MAX_STAKE = 0.9  # of the most a bet can stake and stay solvent at the worst value


def degradation_wealth(x: np.ndarray, delta: float) -> np.ndarray:
    """W_t after each value of ``x`` (an array of the same length). See the module docstring."""
    x = np.asarray(x, dtype=float)
    cap = MAX_STAKE / (delta - LOW)  # 1 + lambda * (X - delta) >= 1 - MAX_STAKE > 0 for X >= LOW
    wealth = np.empty((len(RECENT), len(x)))
    for j, memory in enumerate(RECENT):
        w = 1.0
        for t in range(len(x)):
            past = x[max(0, t - memory):t]
            lam = _bet(past, delta, cap)
            w *= 1 + lam * (x[t] - delta)
            wealth[j, t] = w
    return wealth.mean(axis=0) if len(x) else np.zeros(0)


def _bet(past: np.ndarray, delta: float, cap: float) -> float:
    """The growth-rate optimal bet on a gain of ``mean - delta`` (aGRAPA), from earlier values
    only, shrunk towards no bet while there are few (a prior of one value at delta)."""
    if not len(past):
        return 0.0
    gain = (past.sum() + delta) / (len(past) + 1) - delta
    var = (((past - past.mean()) ** 2).sum() + 0.25) / (len(past) + 1)
    return float(min(max(gain / (var + gain ** 2), 0.0), cap))


def betting_cs(x: np.ndarray, alpha: float, grid: int = 2001) -> tuple[float, float]:
    """(lower, upper) of the (1 - alpha) confidence sequence for the mean of ``x`` after its last
    value; (LOW, HIGH) for an empty stream. No running intersection over earlier steps: after a
    change the mean moves, and an intersection would shut out where it went."""
    x = np.asarray(x, dtype=float)
    if not len(x):
        return LOW, HIGH
    y = (x - LOW) / (HIGH - LOW)  # to [0, 1]
    t = np.arange(1, len(y) + 1)
    mu = (0.5 + np.cumsum(y)) / (t + 1)
    var = (0.25 + np.cumsum((y - mu) ** 2)) / (t + 1)
    var_before = np.r_[0.25, var[:-1]]
    lam = np.minimum(np.sqrt(2 * math.log(2 / alpha) / (var_before * t * np.log(1 + t))), 1.0)
    m = np.linspace(0, 1, grid)[1:-1, None]  # candidate means
    c = 0.5
    up = np.cumsum(np.log1p(np.minimum(lam, c / m) * (y - m)), axis=1)
    down = np.cumsum(np.log1p(-np.minimum(lam, c / (1 - m)) * (y - m)), axis=1)
    k = np.logaddexp(up, down) - math.log(2)  # hedged: half the capital on each side
    alive = k[:, -1] < math.log(1 / alpha)  # m not rejected after the last value
    if not alive.any():
        mean = float(x.mean())
        return mean, mean
    kept = m[alive, 0]
    return float(kept.min() * (HIGH - LOW) + LOW), float(kept.max() * (HIGH - LOW) + LOW)


def nights_to_reach(half_width: float, target: float, values: int, per_night: float) -> int | None:
    """Nights until the interval's half-width falls to ``target`` at ``per_night`` values a
    night, taking the width to shrink as 1/sqrt(values) (the log factor of an anytime interval
    ignored: a lower bound). None when nothing arrives."""
    if half_width <= target:
        return 0
    if per_night <= 0 or values <= 0:
        return None
    needed = values * (half_width / target) ** 2
    return int(math.ceil((needed - values) / per_night))

"""The anytime-valid statistics of nightly re-validation (moola.evaluation.sequential), on simulated streams:
the degradation test's false alarms under its null, its detection after a drop, and the
confidence sequence's coverage. Seeded and small (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from moola.evaluation.sequential import betting_cs, degradation_wealth, nights_to_reach

ALPHA = 0.05


def stream(rng, mean: float, n: int, sd: float = 0.15) -> np.ndarray:
    return np.clip(rng.normal(mean, sd, n), -1, 1)


@pytest.mark.parametrize("mean", [0.0, 0.02])  # well inside the null, and on its edge (mean = delta)
def test_under_the_null_the_evidence_rarely_reaches_one_over_alpha(mean):
    """Ville: P(wealth ever >= 1/alpha) <= alpha. 200 streams of 200 days; binomial noise on 5%
    of 200 allows up to ~16 alarms, the test's own conservatism gives far fewer."""
    rng = np.random.default_rng(11)
    alarms = sum(degradation_wealth(stream(rng, mean, 200), 0.02).max() >= 1 / ALPHA for _ in range(200))
    assert alarms <= 16, alarms


def test_a_drop_is_detected_within_weeks_and_not_before_it():
    rng = np.random.default_rng(3)
    delays = []
    for _ in range(40):
        x = np.r_[stream(rng, -0.1, 100), stream(rng, 0.3, 100)]
        w = degradation_wealth(x, 0.02)
        assert w[:100].max() < 1 / ALPHA  # healthy days raise no alarm
        hit = np.flatnonzero(w >= 1 / ALPHA)
        delays.append(hit[0] - 100 if len(hit) else 1000)
    assert np.median(delays) <= 40 and max(delays) < 100, delays


def test_the_wealth_of_an_empty_stream_and_of_no_bet():
    assert len(degradation_wealth(np.array([]), 0.02)) == 0
    # the first value is never bet on (nothing came before it)
    assert degradation_wealth(np.array([1.0]), 0.02)[0] == 1.0


def test_the_confidence_sequence_covers_a_stable_mean_at_every_step():
    """At every step of 100 streams at once: the share of streams whose interval missed the true
    mean at any step checked (days 10, 20, ..., 100) stays below alpha plus noise."""
    rng = np.random.default_rng(5)
    missed, widths = 0, []
    for _ in range(100):
        x = stream(rng, 0.05, 100, sd=0.2)
        ok = True
        for t in range(10, 101, 10):
            lo, hi = betting_cs(x[:t], ALPHA)
            ok &= lo <= 0.05 <= hi
        missed += not ok
        widths.append(hi - lo)
    assert missed <= 10, missed
    assert 0.05 < np.mean(widths) < 0.6  # informative, not the whole range


def test_the_confidence_sequence_narrows_with_evidence_and_is_the_range_without():
    rng = np.random.default_rng(1)
    x = stream(rng, 0.0, 400)
    assert betting_cs(np.array([]), ALPHA) == (-1.0, 1.0)
    w = [np.subtract(*betting_cs(x[:t], ALPHA)[::-1]) for t in (25, 100, 400)]
    assert w[0] > w[1] > w[2]


def test_nights_to_reach_a_width():
    assert nights_to_reach(0.01, 0.02, 30, 1.0) == 0
    assert nights_to_reach(0.04, 0.02, 30, 1.0) == 90  # four times the values: 120, 90 more
    assert nights_to_reach(0.04, 0.02, 30, 2.0) == 45
    assert nights_to_reach(0.04, 0.02, 30, 0.0) is None

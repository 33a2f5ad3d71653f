"""The paired statistics behind the decision: weighted F1 under resampling, exact McNemar, Holm,
and the bootstrap interval's coverage of a known difference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from moola.evaluation.stats import holm, mcnemar_exact, paired_evidence, weighted_f1_rows


@pytest.mark.parametrize("k", [2, 3])
def test_weighted_f1_under_resampling_matches_sklearn(k):
    rng = np.random.default_rng(k)
    y, p = rng.integers(0, k, 40), rng.integers(0, k, 40)
    w = rng.multinomial(40, np.full(40, 1 / 40), size=6).astype(float)
    got = weighted_f1_rows(y, p, k, w)
    for b in range(6):
        reps = w[b].astype(int)
        assert got[b] == pytest.approx(f1_score(np.repeat(y, reps), np.repeat(p, reps), average="weighted",
                                                labels=list(range(k)), zero_division=0))


@pytest.mark.parametrize("a_only,b_only,p", [
    (0, 0, 1.0), (3, 3, 1.0), (0, 5, 0.0625), (1, 9, 0.021484375), (9, 1, 0.021484375),
    (2, 10, 0.03857421875), (0, 10, 0.001953125),
])
def test_mcnemar_exact_on_hand_made_tables(a_only, b_only, p):
    # 2 * P(X <= min) for X ~ Bin(a_only + b_only, 1/2), at most 1, worked out by hand
    assert mcnemar_exact(a_only, b_only) == pytest.approx(p)


def test_mcnemar_exact_is_the_doubled_binomial_tail_on_every_small_table():
    """scipy's binomtest (what mcnemar_exact calls) against the closed form it replaced."""
    from math import comb
    for n in range(1, 41):
        for k in range(n + 1):
            tail = sum(comb(n, i) for i in range(min(k, n - k) + 1)) / 2 ** n
            assert mcnemar_exact(k, n - k) == pytest.approx(min(1.0, 2 * tail), rel=1e-12, abs=1e-15), (k, n - k)


def test_holm_steps_down_and_stops_at_the_first_failure():
    assert holm({"a": 0.01, "b": 0.02, "c": 0.03}, 0.05) == {"a": True, "b": True, "c": True}
    # 0.01 <= 0.05/3, 0.03 > 0.05/2: b stops it, and c (0.04 <= 0.05) is not rejected either
    assert holm({"a": 0.01, "b": 0.03, "c": 0.04}, 0.05) == {"a": True, "b": False, "c": False}
    assert holm({"a": 0.02}, 0.025) == {"a": True}
    assert holm({"a": 0.02, "b": 0.5}, 0.025) == {"a": False, "b": False}  # 0.02 > 0.025/2


def proba_from(y: np.ndarray, right: np.ndarray, k: int = 2, conf: float = 0.8) -> np.ndarray:
    """Probabilities that put ``conf`` on the true class where ``right``, else on the next class."""
    pred = np.where(right, y, (y + 1) % k)
    p = np.full((len(y), k), (1 - conf) / (k - 1))
    p[np.arange(len(y)), pred] = conf
    return p


def test_identical_models_give_a_zero_difference_and_p_one():
    y = np.array([0, 1] * 30)
    p = proba_from(y, np.arange(60) % 3 > 0)
    e = paired_evidence(y, p, p, positive=1, n_boot=300)
    assert e.f1_weighted.diff == 0 and e.f1_weighted.ci_low == 0 == e.f1_weighted.ci_high
    assert e.mcnemar.model_dump() == {"a_only": 0, "b_only": 0, "p": 1.0}
    assert e.p_not_above_margin == 1.0  # never above a zero margin


def test_bootstrap_interval_covers_a_known_difference():
    """A population of 20,000 windows where B is right on 85% and A on 70%: the weighted-F1
    difference over the population is known; 95% intervals from samples of 80 windows must
    cover it about 95% of the time (binomial noise over 150 samples: 0.88-0.99)."""
    rng = np.random.default_rng(7)
    N = 20_000
    y = rng.integers(0, 2, N)
    right_a, right_b = rng.random(N) < 0.70, rng.random(N) < 0.85
    pa, pb = proba_from(y, right_a), proba_from(y, right_b)
    ones = np.ones((1, N))
    truth = float(weighted_f1_rows(y, pb.argmax(1), 2, ones)[0] - weighted_f1_rows(y, pa.argmax(1), 2, ones)[0])
    assert 0.13 < truth < 0.17
    covered = lows = 0
    for s in range(150):
        idx = rng.integers(0, N, 80)
        e = paired_evidence(y[idx], pa[idx], pb[idx], positive=1, n_boot=400, seed=s)
        covered += e.f1_weighted.ci_low <= truth <= e.f1_weighted.ci_high
        lows += e.f1_weighted.ci_low > 0
    assert 0.88 <= covered / 150 <= 0.99, covered
    assert lows / 150 > 0.5  # and a difference this size is usually detected at 80 windows


def test_brier_difference_and_its_interval_have_the_right_sign():
    y = np.array([0, 1] * 40)
    right = np.ones(80, dtype=bool)
    sharp, vague = proba_from(y, right, conf=0.95), proba_from(y, right, conf=0.6)
    e = paired_evidence(y, vague, sharp, positive=1, n_boot=300)
    assert e.f1_weighted.diff == 0
    assert e.brier.diff == pytest.approx(0.05 ** 2 - 0.4 ** 2)  # per window, halved sum over 2 classes
    assert e.brier.ci_high < 0


def discordant(b_only: int, a_only: int, agree: int = 16):
    """Windows where only B is right, only A is right, then both right (binary, balanced labels)."""
    n = b_only + a_only + agree
    y = np.arange(n) % 2
    right_a = np.r_[np.zeros(b_only, bool), np.ones(a_only, bool), np.ones(agree, bool)]
    right_b = np.r_[np.ones(b_only, bool), np.zeros(a_only, bool), np.ones(agree, bool)]
    return y, proba_from(y, right_a), proba_from(y, right_b)


@pytest.mark.parametrize("b_only,a_only,p", [
    (4, 0, 1 / 16),  # the bootstrap's p here is ~0.01 and shipped; 1/16 does not ship at 2.5%
    (6, 0, 1 / 64),  # ships at 2.5%
    (0, 4, 1.0), (0, 0, 1.0),
    (5, 1, 7 / 64),  # swaps with a difference at least the observed: 1 + 6
])
def test_the_sign_flip_test_is_exact_on_hand_made_tables(b_only, a_only, p):
    from moola.evaluation.stats import group_codes, sign_flip_p
    y, pa, pb = discordant(b_only, a_only)
    got, exact = sign_flip_p(y, pa.argmax(1), pb.argmax(1), 2, group_codes(None, len(y)))
    assert exact and got == pytest.approx(p)
    e = paired_evidence(y, pa, pb, positive=1, n_boot=300)
    assert e.p_sign_flip == pytest.approx(p) and e.sign_flip_exact


def test_4_of_0_discordant_windows_would_have_shipped_on_the_bootstrap_alone():
    y, pa, pb = discordant(4, 0)
    assert paired_evidence(y, pa, pb, positive=1).p_not_above_margin < 0.025 < 1 / 16


def test_windows_of_one_group_are_swapped_and_resampled_together():
    from moola.evaluation.stats import bootstrap_weights, group_codes, sign_flip_p
    y, pa, pb = discordant(4, 0)
    groups = ["g0", "g0", "g1", "g1"] + [f"s{i}" for i in range(16)]
    codes = group_codes(groups, len(y))
    got, exact = sign_flip_p(y, pa.argmax(1), pb.argmax(1), 2, codes)
    assert exact and got == pytest.approx(1 / 4)  # two groups disagree: 4 swap patterns
    w = bootstrap_weights(codes, 500, np.random.default_rng(0))
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 2] == w[:, 3]).all()
    assert np.allclose(w.sum(axis=1).mean(), len(y), rtol=0.05)  # on average as many windows as there are
    e = paired_evidence(y, pa, pb, positive=1, groups=groups, n_boot=300)
    assert e.groups == 18 and e.p_sign_flip == pytest.approx(1 / 4)


def test_many_disagreeing_groups_are_sampled_not_enumerated():
    from moola.evaluation.stats import EXACT_UP_TO, group_codes, sign_flip_p
    y, pa, pb = discordant(EXACT_UP_TO + 6, 0)
    got, exact = sign_flip_p(y, pa.argmax(1), pb.argmax(1), 2, group_codes(None, len(y)), n_perm=1999)
    assert not exact and got == pytest.approx(1 / 2000, abs=1e-3)  # only the observed swap reaches it


@pytest.mark.parametrize("k,positive", [(2, 1), (3, None)])
def test_average_precision_under_resampling_matches_moola_metrics(k, positive):
    from moola.evaluation.metrics import pr_auc
    from moola.evaluation.stats import average_precision_rows
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 50)
    p = np.round(rng.dirichlet(np.ones(k), 50), 1) + 1e-3  # rounded: tied scores, as sklearn groups them
    p /= p.sum(axis=1, keepdims=True)
    w = rng.multinomial(50, np.full(50, 1 / 50), size=5).astype(float)
    got = average_precision_rows(y, p, positive, w)
    for b in range(5):
        reps = w[b].astype(int)
        assert got[b] == pytest.approx(pr_auc(np.repeat(y, reps), np.repeat(p, reps, axis=0), positive))


def test_the_smallest_detectable_difference_shrinks_with_windows():
    from moola.evaluation.stats import detectable
    d = detectable(0.05, 0.025, 60, gain=0.05)
    assert d.difference == pytest.approx((1.959964 + 0.841621) * 0.05, rel=1e-4)
    assert d.windows_for_gain == int(np.ceil(60 * (d.difference / 0.05) ** 2))
    assert detectable(0.0, 0.025, 60).difference == pytest.approx(2.801585 / 60, rel=1e-4)  # one window's worth

"""The nightly re-validation verdict (pure)."""

from __future__ import annotations

from moola.decision import Policy
from moola.revalidate import revalidation_verdict

RECORDED = {"f1_weighted": 0.80}


def test_same_or_slightly_lower_f1_is_healthy():
    v = revalidation_verdict(RECORDED, {"f1_weighted": 0.78}, False, [])
    assert v.healthy and v.reasons == ["healthy: F1 0.780 (recorded 0.800)"]
    assert [r.passed for r in v.rules] == [True, True]


def test_f1_below_the_floor_is_unhealthy_and_says_by_how_much():
    v = revalidation_verdict(RECORDED, {"f1_weighted": 0.74}, False, [])
    assert not v.healthy
    assert v.reasons == ["F1 at most 0.05 below the recorded F1: failed (0.740 now vs 0.800 recorded)"]


def test_the_floor_comes_from_the_policy():
    assert revalidation_verdict(RECORDED, {"f1_weighted": 0.74}, False, [], Policy(revalidate_f1_drop=0.1)).healthy
    assert not revalidation_verdict(RECORDED, {"f1_weighted": 0.79}, False, [], Policy(revalidate_f1_drop=0.0)).healthy


def test_degenerate_is_unhealthy_even_with_a_good_f1():
    v = revalidation_verdict(RECORDED, {"f1_weighted": 0.85}, True, ["predicts a single class on validation (a)"])
    assert not v.healthy
    assert v.reasons == ["not degenerate on the latest validation fold: failed "
                         "(predicts a single class on validation (a))"]


def test_no_recorded_f1_checks_degeneracy_only():
    assert revalidation_verdict({}, {"f1_weighted": 0.3}, False, []).healthy

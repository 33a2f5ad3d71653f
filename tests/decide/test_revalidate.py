"""Nightly re-validation's pure parts: which windows enter a version's ledger, and the verdict
on the ledger."""

from __future__ import annotations

import numpy as np

from moola.decide.decision import Policy
from moola.decide.revalidate import MIN_SINGLE_CLASS, fresh_rows, group_differences, revalidation_verdict

DAY = 86_400 * 10**9


def windows(days: int, start_day: int = 0):
    """Two windows a day (groups 'd<n>'), the second 3 hours after the first."""
    ids, starts, groups = [], [], []
    for d in range(start_day, start_day + days):
        for j in range(2):
            ids.append(f"d{d}_{j}")
            starts.append(d * DAY + j * 3 * 3600 * 10**9)
            groups.append(f"d{d}")
    return np.array(ids), np.array(starts, dtype=np.int64), np.array(groups)


def rows_for(ids, starts, groups, picked, night="n1", prod=0.1, chal=0.2, predicted="a"):
    return [{"window_id": str(ids[r]), "start": int(starts[r]), "group": str(groups[r]), "label": "a",
             "predicted": predicted, "night": night, "brier": {"production": prod, "minirocket": chal,
                                                                 "base_rate": chal}} for r in picked]


def test_windows_before_the_training_end_or_in_the_shipping_evidence_are_never_counted():
    ids, starts, groups = windows(10)
    picked = fresh_rows(ids, starts, groups, not_before_ns=4 * DAY, shipped={"d5_0", "d5_1", "d6_1"}, ledger=[])
    # days 0-3 start before the training end (plus its span); day 5 and d6_1 shipped it
    assert [ids[r] for r in picked] == ["d4_0", "d4_1", "d6_0", "d7_0", "d7_1", "d8_0", "d8_1", "d9_0", "d9_1"]


def test_nothing_is_counted_twice_across_nights_and_late_windows_are_not_counted():
    ids, starts, groups = windows(6)
    first = fresh_rows(ids[:6], starts[:6], groups[:6], 0, set(), [])
    ledger = rows_for(ids, starts, groups, first)
    assert len(first) == 6
    # the next night's data holds the same days again plus three new ones: only the new ones count
    second = fresh_rows(ids, starts, groups, 0, set(), ledger)
    assert [ids[r] for r in second] == ["d3_0", "d3_1", "d4_0", "d4_1", "d5_0", "d5_1"]
    # a window arriving late, into a day already counted or before the last counted one: not counted
    ledger += rows_for(ids, starts, groups, second, night="n2")
    late_ids = np.r_[ids, ["d2_2", "d9_0"]]
    late_starts = np.r_[starts, [2 * DAY + 5 * 3600 * 10**9, 9 * DAY]]
    late_groups = np.r_[groups, ["d2", "d9"]]
    third = fresh_rows(late_ids, late_starts, late_groups, 0, set(), ledger)
    assert [late_ids[r] for r in third] == ["d9_0"]


def test_windows_are_taken_in_time_order_whatever_the_file_order():
    ids, starts, groups = windows(3)
    perm = np.array([5, 0, 3, 1, 4, 2])
    picked = fresh_rows(ids[perm], starts[perm], groups[perm], None, set(), [])
    assert list(ids[perm][picked]) == list(ids)


def test_a_day_is_one_value_the_mean_of_its_windows():
    ids, starts, groups = windows(2)
    ledger = rows_for(ids, starts, groups, range(4))
    ledger[1]["brier"]["production"] = 0.5  # day 0: (0.1 - 0.2 + 0.5 - 0.2) / 2
    assert np.allclose(group_differences(ledger, "minirocket"), [0.1, -0.1])


def ledger_of(diffs: list[float], predicted=None) -> list[dict]:
    """One window a day, production's Brier 0.3 + diff against both challengers' 0.3."""
    out = []
    for d, x in enumerate(diffs):
        out.append({"window_id": f"w{d}", "start": d * DAY, "group": f"d{d}", "label": "a" if d % 2 else "b",
                    "predicted": predicted or ("a" if d % 2 else "b"), "night": f"n{d // 2}",
                    "brier": {"production": 0.3 + x, "minirocket": 0.3, "base_rate": 0.3}})
    return out


def test_no_ledger_yet_is_healthy_without_evidence():
    v = revalidation_verdict([])
    assert v.healthy and v.summary["status"] == "no evidence" and "not enough evidence yet" in v.reasons[0]


def test_a_production_as_good_as_the_challengers_is_healthy_and_says_what_it_can_see():
    rng = np.random.default_rng(0)
    v = revalidation_verdict(ledger_of(list(rng.normal(0.0, 0.1, 40))), recorded_f1=0.8)
    assert v.healthy and v.summary["status"] == "not enough evidence"
    mr = v.summary["challengers"]["minirocket"]
    assert mr["evidence"] < 20 and mr["interval"][0] < 0 < mr["interval"][1]
    assert mr["detectable"] > 0.02 and mr["nights_to_margin"] > 0
    assert "recorded 0.800 when it shipped, on other windows" in v.reasons[0]


def test_a_production_clearly_better_than_both_is_confidently_healthy():
    v = revalidation_verdict(ledger_of([-0.6] * 200))
    assert v.healthy and v.summary["status"] == "confident" and "confidently" in v.reasons[0]


def test_a_production_much_worse_is_degraded_naming_the_evidence():
    v = revalidation_verdict(ledger_of([0.4] * 40))
    assert not v.healthy and v.summary["status"] == "degraded"
    assert v.reasons[0].startswith("production's Brier score is worse than a fresh MiniRocket control's by more "
                                   "than 0.02 on 40 windows it never saw")
    assert [r.passed for r in v.rules][:2] == [False, False]


def test_the_margin_comes_from_the_policy():
    worse = ledger_of([0.4] * 40)
    assert revalidation_verdict(worse, Policy(revalidate_margin=0.5)).healthy


def test_one_predicted_class_over_the_last_windows_is_an_alert_without_statistics():
    v = revalidation_verdict(ledger_of([0.0] * MIN_SINGLE_CLASS, predicted="a"))
    assert not v.healthy and v.reasons == [f"production predicted only 'a' on the last {MIN_SINGLE_CLASS} windows"]
    assert revalidation_verdict(ledger_of([0.0] * (MIN_SINGLE_CLASS - 1), predicted="a")).healthy

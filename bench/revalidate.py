"""Nightly re-validation's error rates, simulated (issue 24): false alarms per version-year and
the delay to detect a real drop, for the rule as deployed (moola.decide.revalidate.revalidation_verdict
on a growing ledger) and for the rule before it (today's F1 on the last 20 windows against the F1
recorded at ship time, tolerance 0.05).

Each production version lives a year of trading nights (252), two labelled windows a night (one
day group). Per window the label is a fair coin; a model of accuracy a is right with probability
a, with confidence U(0.55, 0.95) on its answer. Production has accuracy 0.79 (the clean recipe's
F1 on the sample data); the challenger MiniRocket, retrained each night, has 0.79 too; the base
rate says 0.5/0.5. The recorded ship-time F1 is the best of three such candidates on 20 windows
(the selection the old rule inherits).

- **null**: production stays at 0.79 all year. A Degraded night is a false alarm.
- **drop**: production falls to 0.68 (the MiniRocket challenger stays at 0.79) from night 60.
- **inverted**: its labels invert from night 60 (the flow test's drift).

    .venv/bin/python bench/revalidate.py [--versions 400] [--nights 252] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from moola.decide.decision import Policy
from moola.decide.revalidate import revalidation_verdict

ACC, DROP, CHANGE_AT = 0.79, 0.68, 60


def answers(rng, y: np.ndarray, acc: float) -> np.ndarray:
    """Probability of class 1 from a model right with probability ``acc``."""
    right = rng.random(len(y)) < acc
    conf = rng.uniform(0.55, 0.95, len(y))
    p_true = np.where(right, conf, 1 - conf)
    return np.where(y == 1, p_true, 1 - p_true)


def brier(y: np.ndarray, p1: np.ndarray) -> np.ndarray:
    return (y - p1) ** 2  # halved sum over two classes: ((y - p1)^2 + ((1-y) - (1-p1))^2) / 2


def f1_weighted(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score
    return float(f1_score(y, pred, average="weighted", zero_division=0))


def first_degraded_night(ledger: list[dict], policy: Policy) -> int | None:
    """The first night revalidation_verdict would say Degraded on the ledger so far. Its bets use
    only earlier values, so the wealth path of the whole year's ledger is the path each night saw:
    one pass finds the first crossing (checked against the verdict itself in main)."""
    from moola.decide.revalidate import CHALLENGERS, MIN_SINGLE_CLASS, group_differences
    from moola.evaluation.sequential import degradation_wealth
    threshold = len(CHALLENGERS) / policy.revalidate_alpha
    first = []
    for name in CHALLENGERS:
        hit = np.flatnonzero(degradation_wealth(group_differences(ledger, name), policy.revalidate_margin) >= threshold)
        first += [int(hit[0])] if len(hit) else []
    pred = [r["predicted"] for r in ledger]
    for end in range(MIN_SINGLE_CLASS, len(pred) + 1):
        if len(set(pred[end - MIN_SINGLE_CLASS:end])) == 1:
            first.append(int(ledger[end - 1]["night"]))
            break
    return min(first) if first else None


def version_year(rng, nights: int, scenario: str) -> tuple[list[dict], int | None]:
    """A year's ledger, and the first alarm night of the old rule (None if none)."""
    ship_y = rng.integers(0, 2, 20)
    recorded = max(f1_weighted(ship_y, answers(rng, ship_y, ACC) > 0.5) for _ in range(3))
    ledger, old_alarm, ys, preds = [], None, [], []
    for night in range(nights):
        y = rng.integers(0, 2, 2)
        changed = night >= CHANGE_AT and scenario != "null"
        truth = 1 - y if changed and scenario == "inverted" else y
        acc = DROP if changed and scenario == "drop" else ACC
        prod = answers(rng, y, acc)  # production answers as if nothing changed (inverted: wrong now)
        mr = answers(rng, truth, ACC)
        for i in range(2):
            ledger.append({"window_id": f"{night}_{i}", "start": night * 10 + i, "group": str(night),
                           "label": str(truth[i]), "predicted": str(int(prod[i] > 0.5)), "night": str(night),
                           "brier": {"production": float(brier(truth[i:i + 1], prod[i:i + 1])[0]),
                                     "minirocket": float(brier(truth[i:i + 1], mr[i:i + 1])[0]),
                                     "base_rate": 0.25}})
        ys += list(truth)
        preds += list((prod > 0.5).astype(int))
        if old_alarm is None and len(ys) >= 20 and f1_weighted(np.array(ys[-20:]), np.array(preds[-20:])) < recorded - 0.05:
            old_alarm = night
    return ledger, old_alarm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=400, help="simulated version-years per scenario")
    ap.add_argument("--nights", type=int, default=252)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify", type=int, default=10, help="version-years per scenario checked against "
                    "revalidation_verdict itself on the night of the alarm and the night before")
    args = ap.parse_args()
    policy = Policy()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"{args.versions} version-years of {args.nights} nights per scenario, 2 windows a night, margin "
          f"{policy.revalidate_margin}, alpha {policy.revalidate_alpha}")
    for scenario in ("null", "drop", "inverted"):
        runs = []
        for v in range(args.versions):
            ledger, old = version_year(rng, args.nights, scenario)
            new = first_degraded_night(ledger, policy)
            if v < args.verify:
                upto = new if new is not None else args.nights - 1
                assert revalidation_verdict([r for r in ledger if int(r["night"]) <= upto], policy).healthy == (new is None)
                if new:
                    assert revalidation_verdict([r for r in ledger if int(r["night"]) < new], policy).healthy
            runs.append((new, old))
        for rule, k in (("new", 0), ("old", 1)):
            hits = [r[k] for r in runs]
            if scenario == "null":
                n = sum(h is not None for h in hits)
                print(f"null, {rule} rule: false alarm in {n}/{len(hits)} = {n / len(hits):.1%} of version-years")
            else:
                early = sum(h is not None and h < CHANGE_AT for h in hits)
                late = [h - CHANGE_AT for h in hits if h is not None and h >= CHANGE_AT]
                delay = (f"delay median {np.median(late):.0f} nights, 90th percentile {np.percentile(late, 90):.0f}"
                         if late else "never detected")
                print(f"{scenario} at night {CHANGE_AT}, {rule} rule: detected within the year in "
                      f"{len(late)}/{len(hits)} = {len(late) / len(hits):.1%}; {delay}; "
                      f"alarms before the change {early}/{len(hits)}")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

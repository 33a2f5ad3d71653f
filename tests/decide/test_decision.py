"""Each outcome of the pure decision, from result sets and the predictions behind them."""

from __future__ import annotations

import numpy as np

from moola.decide import decision
from moola.decide.decision import Evidence, Policy
from moola.gates.predictions import Scored
from tests.evaluation.test_stats import proba_from
from tests.fakes.results import typed

N = 60
Y = np.array([0, 1] * (N // 2))
IDS = tuple(f"w{i:03d}" for i in range(N))
CLASSES = ("consolidation", "retracement")


def scored(n_right: int, ids: tuple = IDS, seed: int = 0, conf: float = 0.8) -> Scored:
    """Predictions right on ``n_right`` of the windows (which ones: by ``seed``)."""
    right = np.zeros(len(ids), dtype=bool)
    right[np.random.default_rng(seed).permutation(len(ids))[:n_right]] = True
    y = Y[:len(ids)]
    return Scored(ids, y, proba_from(y, right, conf=conf), CLASSES, 1)


def result(status="passed", degenerate=False, f1=0.75, reasons=(), comparison=None):
    return {"status": status, "degenerate": degenerate, "reasons": list(reasons), "comparison": comparison,
            "metrics": {"f1_weighted": f1}, "pooled": {"f1_weighted": f1, "n": N}}


COLLAPSE = result("failed", True, f1=0.576, reasons=["degenerate: predicts a single class"])


def healthy_set(control_f1=0.6, base_f1=0.75, transfer_f1=0.80):
    return {"validate": {"status": "passed"}, "baseline": result(f1=base_f1),
            "minirocket": result(f1=control_f1), "transfer": result(f1=transfer_f1), "augment": result(f1=0.70)}


def evidence(base=45, control=36, transfer=48, augment=42, production=None, prod_ids=IDS) -> Evidence:
    ev = Evidence({"baseline": scored(base, seed=1), "minirocket": scored(control, seed=2),
                   "transfer": scored(transfer, seed=3), "augment": scored(augment, seed=4)})
    if production is not None:
        ev.production = scored(production, prod_ids, seed=5)
    return ev


PROD_CARD = {"metrics": {"f1_weighted": 0.74}}


def decide(results: dict[str, dict], *args, **kw):
    """moola's decide on results written as {gate: the fields a test sets}."""
    return decision.decide(typed(results), *args, **kw)


def test_gate0_failure_blocks():
    d = decide({"validate": {"status": "failed", "reasons": ["train.parquet: a leak"]}, "baseline": result()})
    assert d.action == "blocked" and "a leak" in d.reasons[0]


def test_the_seed_collapse_is_blocked():
    d = decide({"validate": {"status": "passed"}, "baseline": COLLAPSE, "transfer": COLLAPSE, "augment": COLLAPSE,
                "minirocket": result(f1=0.6)}, evidence=evidence())
    assert d.action == "blocked" and d.candidate is None
    assert "no healthy candidate" in d.reasons[0]


def test_a_control_clearly_ahead_halts_on_investigate():
    d = decide(healthy_set(control_f1=0.95, transfer_f1=0.80), evidence=evidence(control=58, transfer=46))
    assert d.action == "investigate" and "check labels and splits" in d.reasons[0]
    e = d.evidence["control vs transfer"]
    assert e.f1_weighted.ci_low > 0 and e.n == N
    assert "95% CI [+" in d.reasons[0] and f"on {N} windows" in d.reasons[0]


def test_a_control_point_win_within_noise_is_a_warning_not_a_halt():
    results = healthy_set(control_f1=0.82, transfer_f1=0.80)
    ev = evidence(control=49, transfer=48)
    d = decide(results, evidence=ev)
    assert d.action == "ship" and d.candidate == "transfer"
    assert any("within noise, not a halt" in w for w in d.notes)
    assert d.evidence["control vs transfer"].f1_weighted.ci_low <= 0
    # the seed's strict rule, kept behind a policy knob: any point lead over the baseline halts
    strict = decide(results, policy=Policy(control_rule="point"), evidence=ev)
    assert strict.action == "investigate" and "(point rule)" in strict.reasons[0]


def test_first_production_model_ships_the_best_healthy_candidate_by_pooled_f1():
    d = decide(healthy_set(), evidence=evidence())
    assert (d.action, d.candidate) == ("ship", "transfer")


def test_ship_when_a_candidate_beats_production_on_the_same_windows():
    d = decide(healthy_set(), PROD_CARD, evidence=evidence(transfer=52, production=36))
    assert (d.action, d.candidate) == ("ship", "transfer")
    e = d.evidence["transfer vs production"]
    assert e.f1_weighted.ci_low > 0 and e.n == N
    assert all(r.passed for r in d.rules if r.name.startswith("transfer"))
    assert "beats production on the same windows: F1 +" in d.reasons[0]


def test_a_gain_the_interval_cannot_separate_from_zero_reverts_with_the_evidence():
    d = decide(healthy_set(), PROD_CARD, evidence=evidence(base=46, transfer=47, augment=44, production=45))
    assert d.action == "revert" and d.candidate is None
    assert "not enough evidence" in d.reasons[0] and "95% CI [-" in d.reasons[0] and f"on {N} windows" in d.reasons[0]
    assert any(not r.passed and "F1 beats production" in r.name for r in d.rules)


def test_recorded_numbers_are_shown_never_decisive():
    """Production's card says F1 0.95 (it shipped on easier windows); on today's windows it is
    far worse than the candidate. The recorded number would have kept it; the evidence ships."""
    card = {"metrics": {"f1_weighted": 0.95}}
    d = decide(healthy_set(), card, evidence=evidence(transfer=50, production=30))
    assert (d.action, d.candidate) == ("ship", "transfer")
    shown = next(r for r in d.rules if r.name.startswith("production's recorded F1"))
    assert shown.passed and shown.detail == "0.950" and "shown only" in shown.name


def test_no_paired_comparison_with_production_keeps_it():
    ev = evidence()
    ev.production_note = "none of the 60 validation windows starts after production's training data"
    d = decide(healthy_set(), PROD_CARD, evidence=ev)
    assert d.action == "revert" and "none of the 60 validation windows" in d.reasons[0]


def test_production_compared_only_on_its_windows():
    later = IDS[40:]
    d = decide(healthy_set(), PROD_CARD, evidence=evidence(transfer=60, production=0, prod_ids=later))
    assert all(e.n == 20 for k, e in d.evidence.items() if k.endswith("vs production"))


def test_holm_makes_several_candidates_pay_for_the_best_of_three():
    """One candidate whose one-sided p lies between alpha/2/3 and alpha/2 ships alone, but not
    as the best of three comparable ones (Holm's first step is at alpha/2/3)."""
    from moola.evaluation.stats import paired_evidence
    prod, cand = scored(40, seed=5), scored(51, seed=1)
    p = paired_evidence(prod.y, prod.proba, cand.proba, 1).p_sign_flip
    assert 0.025 / 3 < p <= 0.025  # a pair in the window (deterministic: seeds fixed)
    one = Evidence({"baseline": cand}, production=prod)
    only = {"validate": {"status": "passed"}, "baseline": result(f1=0.78)}
    assert decide(only, PROD_CARD, evidence=one).action == "ship"
    three = Evidence({"baseline": cand, "transfer": scored(38, seed=6), "augment": scored(39, seed=7)},
                     production=prod)
    d = decide({**only, "transfer": result(f1=0.6), "augment": result(f1=0.6)}, PROD_CARD, evidence=three)
    assert d.action == "revert" and "Holm over 3 candidates" in " ".join(r.name for r in d.rules)


def test_higher_f1_but_worse_brier_does_not_ship():
    ev = evidence()
    ev.gates["transfer"] = scored(59, seed=3, conf=0.51)  # right more often, but barely confident
    ev.production = scored(48, seed=5, conf=0.99)
    d = decide({"validate": {"status": "passed"}, "transfer": result(f1=0.9)}, PROD_CARD, evidence=ev)
    assert d.action == "revert" and "not shown: Brier non-inferior within 0.02" in d.reasons[0]


def test_margin_raises_the_bar():
    ev = evidence(transfer=50, production=40)
    assert decide(healthy_set(), PROD_CARD, evidence=ev).action == "ship"
    assert decide(healthy_set(), PROD_CARD, Policy(f1_margin=0.2), evidence=ev).action == "revert"


def test_approval_answers_become_decisions():
    from moola.decide.decision import Decision, apply_approval
    d = Decision("ship", ["augment beats production"], candidate="augment")
    assert apply_approval(d, {"approve": True, "note": "ok"}, 60).action == "ship"
    rejected = apply_approval(d, {"approve": False, "note": "not on a Friday"}, 60)
    assert rejected.action == "revert" and rejected.reasons[-1] == "ship rejected by a person: not on a Friday"
    silent = apply_approval(d, None, 60)
    assert silent.action == "revert" and "not approved within 60 s" in silent.reasons[-1]


def test_without_control_predictions_gate_2s_own_verdict_is_used():
    results = healthy_set()
    results["minirocket"] = {**result(f1=0.9), "comparison": {"verdict": "control_wins", "f1": 0.9,
                                                              "baseline_f1": 0.75, "delta": 0.15}}
    d = decide(results, evidence=Evidence({"transfer": scored(48)}))
    assert d.action == "investigate" and "Gate 2: F1 0.900 vs 0.750" in d.reasons[0]
    results["minirocket"]["comparison"]["verdict"] = "within_noise"
    d = decide(results, evidence=Evidence({"transfer": scored(48)}))
    assert d.action == "ship" and "from Gate 2's verdict only" in d.notes[0]


def test_four_windows_only_the_candidate_gets_right_do_not_ship():
    """Issue 24: 4 discordant windows, all for the candidate. The percentile bootstrap said p ~0.01
    and shipped; the exact sign-flip test says 1/16 and production stays."""
    from tests.evaluation.test_stats import discordant
    y, pa, pb = discordant(4, 0, agree=56)
    ids = tuple(f"w{i:03d}" for i in range(len(y)))
    ev = Evidence({"transfer": Scored(ids, y, pb, CLASSES, 1)}, production=Scored(ids, y, pa, CLASSES, 1))
    d = decide({"validate": {"status": "passed"}, "transfer": result(f1=0.9)}, PROD_CARD, evidence=ev)
    assert d.action == "revert" and "not enough evidence" in d.reasons[0]
    rule = next(r for r in d.rules if "sign-flip permutation, exact" in r.name)
    assert not rule.passed and "one-sided p 0.0625" in rule.detail
    y, pa, pb = discordant(6, 0, agree=54)
    ev = Evidence({"transfer": Scored(ids, y, pb, CLASSES, 1)}, production=Scored(ids, y, pa, CLASSES, 1))
    assert decide({"validate": {"status": "passed"}, "transfer": result(f1=0.9)}, PROD_CARD, evidence=ev).action == "ship"


def test_brier_is_judged_on_its_interval_not_its_point():
    """The candidate is right on 8 more windows (exact p 1/256) and its Brier point is lower, but
    it swings between 0.51 and 0.99 confidence: the Brier interval reaches +0.048, past the 0.02
    tolerance. The point rule shipped it; non-inferiority is not shown, production stays."""
    y = np.arange(N) % 2
    right_a = np.arange(N) < 40
    right_b = np.arange(N) < 48
    conf = np.where(np.arange(N) % 4 < 2, 0.51, 0.99)
    pb = np.array([proba_from(y[i:i + 1], right_b[i:i + 1], conf=c)[0] for i, c in enumerate(conf)])
    prod, cand = Scored(IDS, y, proba_from(y, right_a), CLASSES, 1), Scored(IDS, y, pb, CLASSES, 1)
    d = decide({"validate": {"status": "passed"}, "transfer": result(f1=0.9)}, PROD_CARD,
               evidence=Evidence({"transfer": cand}, production=prod))
    e = d.evidence["transfer vs production"]
    assert e.brier.diff < 0 < 0.02 < e.brier.ci_high and e.p_sign_flip == 1 / 256
    assert d.action == "revert" and "not shown: Brier non-inferior within 0.02" in d.reasons[0]
    assert decide({"validate": {"status": "passed"}, "transfer": result(f1=0.9)}, PROD_CARD,
                  Policy(brier_tolerance=0.05), evidence=Evidence({"transfer": cand}, production=prod)).action == "ship"


def test_every_comparison_with_production_says_what_its_windows_can_detect():
    d = decide(healthy_set(), PROD_CARD, evidence=evidence(transfer=50, production=40))
    note = next(n for n in d.notes if "the test detects an F1 difference of" in n)
    e = d.evidence["transfer vs production"].detectable.f1_weighted
    assert f"{e.difference:.3f}" in note and f"needs about {e.windows_for_gain} windows" in note
    assert e.windows == 60 and e.power == 0.8

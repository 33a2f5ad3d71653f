"""Each outcome of the pure decision from realistic result sets."""

from __future__ import annotations

from moola.decision import Policy, decide


def result(status="passed", degenerate=False, f1=0.75, pr_auc=0.7, brier=0.18, ece=0.1, reasons=(), comparison=None):
    return {"status": status, "degenerate": degenerate, "reasons": list(reasons), "comparison": comparison,
            "metrics": {"f1_weighted": f1, "pr_auc": pr_auc, "brier": brier, "ece": ece}}


COLLAPSE = result("failed", True, f1=0.576, pr_auc=0.3, brier=0.25, reasons=["degenerate: predicts a single class"])


def healthy_set(control_f1=0.6, base_f1=0.75, transfer_f1=0.80):
    return {
        "validate": {"status": "passed"},
        "baseline": result(f1=base_f1),
        "minirocket": result(f1=control_f1, comparison={"f1": control_f1, "baseline_f1": base_f1,
                                                         "verdict": "control_wins" if control_f1 >= base_f1 else "baseline_wins"}),
        "transfer": result(f1=transfer_f1, pr_auc=0.72, brier=0.17),
        "augment": result(f1=0.70),
    }


def test_gate0_failure_blocks():
    d = decide({"validate": {"status": "failed", "reasons": ["train.parquet: a leak"]}, "baseline": result()})
    assert d.action == "blocked" and "a leak" in d.reasons[0]


def test_the_seed_collapse_is_blocked():
    d = decide({"validate": {"status": "passed"}, "baseline": COLLAPSE, "transfer": COLLAPSE, "augment": COLLAPSE,
                "minirocket": result(f1=0.6, comparison={"f1": 0.6, "baseline_f1": 0.576, "verdict": "control_wins"})})
    assert d.action == "blocked" and d.candidate is None
    assert "no healthy candidate" in d.reasons[0]


def test_control_beating_baseline_means_investigate():
    d = decide(healthy_set(control_f1=0.90))
    assert d.action == "investigate" and "check labels and splits" in d.reasons[0]


def test_first_production_model_ships_the_best_healthy_candidate():
    d = decide(healthy_set())
    assert (d.action, d.candidate) == ("ship", "transfer")


def test_ship_when_a_candidate_beats_production_on_every_rule():
    prod = {"metrics": {"f1_weighted": 0.74, "pr_auc": 0.70, "brier": 0.18, "ece": 0.1}}
    d = decide(healthy_set(), production=prod)
    assert (d.action, d.candidate) == ("ship", "transfer")
    assert all(r.passed for r in d.rules if r.name.startswith("transfer"))


def test_revert_when_nothing_beats_production():
    prod = {"metrics": {"f1_weighted": 0.85, "pr_auc": 0.80, "brier": 0.12, "ece": 0.1}}
    d = decide(healthy_set(), production=prod)
    assert d.action == "revert" and d.candidate is None
    assert any(not r.passed and "F1" in r.name for r in d.rules)


def test_higher_f1_but_worse_brier_does_not_ship():
    prod = {"metrics": {"f1_weighted": 0.70, "pr_auc": 0.60, "brier": 0.10, "ece": 0.1}}
    d = decide(healthy_set(), production=prod)
    assert d.action == "revert"
    assert any(not r.passed and "Brier" in r.name for r in d.rules)


def test_margins_and_bootstrap_requirement():
    prod = {"metrics": {"f1_weighted": 0.78, "pr_auc": 0.70, "brier": 0.18, "ece": 0.1}}
    assert decide(healthy_set(), prod, Policy(f1_margin=0.05)).action == "revert"
    strict = Policy(require_bootstrap=True)
    assert decide(healthy_set(), prod, strict).action == "revert"  # no bootstrap given
    boot = {"transfer": {"f1_weighted": {"ci_low": 0.01}}}
    assert decide(healthy_set(), prod, strict, boot).candidate == "transfer"


def test_approval_answers_become_decisions():
    from moola.decision import Decision, apply_approval
    d = Decision("ship", ["augment beats production"], candidate="augment")
    assert apply_approval(d, {"approve": True, "note": "ok"}, 60).action == "ship"
    rejected = apply_approval(d, {"approve": False, "note": "not on a Friday"}, 60)
    assert rejected.action == "revert" and rejected.reasons[-1] == "ship rejected by a person: not on a Friday"
    silent = apply_approval(d, None, 60)
    assert silent.action == "revert" and "not approved within 60 s" in silent.reasons[-1]

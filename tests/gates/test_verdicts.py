"""The gates' pure verdicts."""

from moola.evaluation.paired import Detectable, Detectables, Difference, McNemar, PairedEvidence
from moola.gates.verdicts import comparison, control_verdict, degenerate_reasons, load_proof_reasons


def evidence(a: float, b: float, low: float, high: float) -> PairedEvidence:
    """Paired evidence whose F1 block is given; the verdict reads nothing else."""
    none = Difference(a=None, b=None, diff=None, ci_low=None, ci_high=None)
    det = Detectable(windows=60, level=0.025, power=0.8, difference=0.1)
    return PairedEvidence(n=60, groups=60, n_boot=2000, confidence=0.95, margin=0.0,
                          f1_weighted=Difference(a=a, b=b, diff=b - a, ci_low=low, ci_high=high), brier=none,
                          pr_auc=none, p_sign_flip=0.5, sign_flip_exact=False, p_not_above_margin=0.5,
                          mcnemar=McNemar(a_only=0, b_only=0, p=1.0), detectable=Detectables(f1_weighted=det, brier=det))


def test_control_verdict_is_the_seeds_rule_made_statistical():
    assert control_verdict(evidence(0.70, 0.60, -0.2, 0.01)) == ("baseline_wins", None)
    # a point lead the interval cannot separate from 0 (a tie included) is within noise: the gate passes
    assert control_verdict(evidence(0.70, 0.70, -0.1, 0.1)) == ("within_noise", None)
    assert control_verdict(evidence(0.70, 0.78, -0.02, 0.2)) == ("within_noise", None)
    verdict, why = control_verdict(evidence(0.70, 0.90, 0.05, 0.33))
    assert verdict == "control_wins" and "investigate labels and splits" in why
    assert "+0.200, 95% CI [+0.050, +0.330] on 60 windows (0.900 vs 0.700)" in why


def test_comparison_and_reasons():
    assert comparison(0.8, None, None) is None
    assert comparison(0.8, 0.5, {"gate": "baseline"}).delta == 0.8 - 0.5
    assert degenerate_reasons(["predicts one class"]) == ["degenerate: predicts one class"]
    assert load_proof_reasons(["a", "b"]) == ["encoder load proof failed: a; b"]

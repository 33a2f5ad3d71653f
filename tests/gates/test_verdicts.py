"""The gates' pure verdicts."""

from moola.gates.verdicts import comparison, control_verdict, degenerate_reasons, load_proof_reasons


def test_control_verdict_is_the_seeds_rule():
    assert control_verdict(0.60, 0.70) == ("baseline_wins", None)
    verdict, why = control_verdict(0.70, 0.70)  # a tie is a win for the control
    assert verdict == "control_wins" and "investigate labels and splits" in why and "0.700" in why


def test_comparison_and_reasons():
    assert comparison(0.8, None, None) is None
    assert comparison(0.8, 0.5, {"gate": "baseline"})["delta"] == 0.8 - 0.5
    assert degenerate_reasons(["predicts one class"]) == ["degenerate: predicts one class"]
    assert load_proof_reasons(["a", "b"]) == ["encoder load proof failed: a; b"]

"""Pass / fail verdicts of the gates, as pure functions of plain numbers and reasons."""

from __future__ import annotations


def degenerate_reasons(reasons: list[str], what: str = "degenerate") -> list[str]:
    """A model that predicts one class or does not beat the majority class fails its gate."""
    return [f"{what}: {r}" for r in reasons]


def comparison(f1: float, baseline_f1: float | None, info: dict | None) -> dict | None:
    """The gate's F1 next to the --baseline folder's, or None without one."""
    if baseline_f1 is None:
        return None
    return {"baseline_f1": baseline_f1, "f1": f1, "delta": f1 - baseline_f1, "baseline": info}


def control_verdict(control_f1: float, baseline_f1: float) -> tuple[str, str | None]:
    """Gate 2 (the seed's rule): the MiniRocket control must score below the baseline; when it
    matches or beats it, the labels and splits need a look before any candidate is trusted."""
    if control_f1 >= baseline_f1:
        return "control_wins", (f"the MiniRocket control (F1 {control_f1:.3f}) matches or beats the baseline "
                                f"(F1 {baseline_f1:.3f}): investigate labels and splits")
    return "baseline_wins", None


def load_proof_reasons(proof_reasons: list[str]) -> list[str]:
    """Gate 4 fails before any training when the encoder does not load as the proof demands."""
    return ["encoder load proof failed: " + "; ".join(proof_reasons)]

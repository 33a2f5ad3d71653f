"""Pass / fail verdicts of the gates, as pure functions of plain numbers and reasons."""

from __future__ import annotations

from moola.evaluation.paired import PairedEvidence, interval
from moola.gates.result import Comparison


def degenerate_reasons(reasons: list[str], what: str = "degenerate") -> list[str]:
    """A model that predicts one class or does not beat the majority class fails its gate."""
    return [f"{what}: {r}" for r in reasons]


def comparison(f1: float, baseline_f1: float | None, info: dict | None) -> Comparison | None:
    """The gate's F1 next to the --baseline folder's, or None without one."""
    if baseline_f1 is None:
        return None
    return Comparison(baseline_f1=baseline_f1, f1=f1, delta=f1 - baseline_f1, baseline=info)


def control_verdict(evidence: PairedEvidence) -> tuple[str, str | None]:
    """Gate 2, the seed's rule made statistical. ``evidence``: moola.evaluation.stats.paired_evidence of the
    control (B) against the baseline (A) on the same pooled windows. The control wins, and the
    labels and splits need a look, only when the 95% CI of its F1 lead lies above 0; a lead the
    interval cannot separate from 0 is ``within_noise`` (reported, the gate passes)."""
    f = evidence.f1_weighted
    if f.ci_low > 0:
        return "control_wins", (f"the MiniRocket control beats the baseline: F1 {interval(evidence)} "
                                f"({f.b:.3f} vs {f.a:.3f}): investigate labels and splits")
    return ("within_noise" if f.diff >= 0 else "baseline_wins"), None


def load_proof_reasons(proof_reasons: list[str]) -> list[str]:
    """Gate 4 fails before any training when the encoder does not load as the proof demands."""
    return ["encoder load proof failed: " + "; ".join(proof_reasons)]

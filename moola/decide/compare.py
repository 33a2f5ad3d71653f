"""``moola compare``: the paired evidence of two models' predictions on the same windows."""

from __future__ import annotations

from pathlib import Path

from moola.core.errors import ConfigError, DataError
from moola.decide.decision import Policy
from moola.evaluation.paired import PairedEvidence
from moola.evaluation.stats import paired_evidence
from moola.gates.predictions import gate_scored, read_predictions

MIN_BOOT = 100


def compare_predictions(a_path: Path, b_path: Path, n_boot: int = 2000, seed: int = 0) -> PairedEvidence:
    """moola.evaluation.stats.paired_evidence of B against A (weighted F1, Brier, PR-AUC, the sign-flip test,
    McNemar, the smallest detectable difference) over the same windows: the statistics the
    decision uses, with its default detectable gain."""
    if n_boot < MIN_BOOT:
        raise ConfigError(f"--n-boot {n_boot}: need at least {MIN_BOOT} resamples for a confidence interval")
    for p in (a_path, b_path):
        read_predictions(p)  # one clear error for a file that is not a predictions file
    a, b = gate_scored(a_path), gate_scored(b_path)
    if len(a.ids) != len(b.ids) or set(a.ids) != set(b.ids):
        common = len(set(a.ids) & set(b.ids))
        raise DataError(f"{a_path} and {b_path} do not cover the same windows "
                        f"({len(a.ids)} and {len(b.ids)} rows, {common} in common)")
    if a.classes != b.classes:
        raise DataError(f"{a_path} and {b_path} predict different classes ({list(a.classes)} and {list(b.classes)})")
    b = b.subset(a.ids)
    if (a.y != b.y).any():
        raise DataError("the two predictions files disagree on true labels")
    return paired_evidence(a.y, a.proba, b.proba, None, 0.0, n_boot, seed, gain=Policy().detectable_gain)

"""The typed result of ``moola.evaluation.stats.paired_evidence``: B against A on the same windows.

Its own module, with pydantic only, so the places that only read evidence (result.json, the report,
the worker's imports) do not load scikit-learn and scipy with the statistics that make it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Difference(BaseModel):
    """B - A of one measure on the same windows: both values, the difference, and its bootstrap
    interval (None where the measure is undefined: PR-AUC without a positive class)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    a: float | None
    b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None


class McNemar(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    a_only: int   # windows only A got right
    b_only: int   # windows only B got right
    p: float      # two-sided exact


class Detectable(BaseModel):
    """The smallest difference a one-sided test at ``level`` detects with ``power`` on ``windows``
    windows, and the windows a ``gain`` would need (moola.evaluation.stats.detectable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    windows: int
    level: float
    power: float
    difference: float
    gain: float | None = None
    windows_for_gain: int | None = None


class Detectables(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    f1_weighted: Detectable
    brier: Detectable


class PairedEvidence(BaseModel):
    """B against A on the same windows (``paired_evidence``): what every comparison of the decision,
    of Gate 2 and of ``moola compare`` rests on."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    n: int                       # windows
    groups: int                  # groups resampled and swapped together
    n_boot: int
    confidence: float            # of the intervals: 1 - alpha
    margin: float                # the F1 gain p_not_above_margin tests against
    f1_weighted: Difference
    brier: Difference
    pr_auc: Difference
    p_sign_flip: float           # one-sided permutation p of "B's F1 is no better than A's"
    sign_flip_exact: bool        # every swap enumerated
    p_not_above_margin: float    # one-sided bootstrap p of "B's F1 exceeds A's by at most margin"
    mcnemar: McNemar
    detectable: Detectables


def interval(e: PairedEvidence, key: str = "f1_weighted") -> str:
    """A paired_evidence difference in words: '+0.030, 95% CI [-0.120, +0.180] on 60 windows'."""
    m: Difference = getattr(e, key)
    return f"{m.diff:+.3f}, {e.confidence:.0%} CI [{m.ci_low:+.3f}, {m.ci_high:+.3f}] on {e.n} windows"

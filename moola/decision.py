"""The ship / revert / investigate / blocked decision, as a pure function of gate results.

Order of the rules (the first that applies wins):
1. ``blocked``: Gate 0 failed, or no candidate is healthy (every one failed or is degenerate).
   Nothing ships. The seed's own model (a majority-class collapse) ends here.
2. ``investigate``: the MiniRocket control matched or beat the baseline (the seed's rule):
   check labels and splits before trusting any candidate. Nothing ships.
3. ``ship``: no production model yet -> the best healthy candidate ships (the seed's phase 1);
   else the best healthy candidate that beats production under the policy.
4. ``revert``: no candidate qualifies -> production stays (or, when the caller says production
   has degraded, returns to the last good version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["ship", "revert", "investigate", "blocked"]
CANDIDATE_GATES = ("baseline", "transfer", "augment")


class Policy(BaseModel):
    """Every threshold of the decision, in one place."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    f1_margin: float = Field(0.0, ge=0, description="candidate F1 must exceed production F1 by more than this")
    pr_auc_tolerance: float = Field(0.0, ge=0, description="candidate PR-AUC may be lower by at most this")
    brier_tolerance: float = Field(0.0, ge=0, description="candidate Brier may be higher by at most this")
    require_bootstrap: bool = Field(False, description="also need the paired-bootstrap F1 CI above 0")
    revalidate_f1_drop: float = Field(0.05, ge=0, description="nightly: production F1 on the latest validation "
                                      "fold may fall at most this below the F1 recorded when it shipped")


@dataclass
class Rule:
    name: str
    passed: bool
    detail: str


@dataclass
class Decision:
    action: Action
    reasons: list[str]
    candidate: str | None = None
    rules: list[Rule] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"action": self.action, "reasons": self.reasons, "candidate": self.candidate,
                "rules": [r.__dict__ for r in self.rules]}


def healthy(result: dict | None) -> bool:
    return bool(result) and result.get("status") == "passed" and result.get("degenerate") is False


def _m(result: dict, key: str):
    return (result.get("metrics") or {}).get(key)


def decide(results: dict[str, dict], production: dict | None = None, policy: Policy | None = None,
           bootstrap: dict[str, dict] | None = None) -> Decision:
    """``results``: gate name -> result.json as a dict; ``production``: the production model's
    recorded metrics (``{"metrics": {...}}``) or None; ``bootstrap``: candidate -> paired
    bootstrap vs production (moola.metrics.paired_bootstrap)."""
    policy = policy or Policy()
    gate0 = results.get("validate")
    if gate0 is not None and gate0.get("status") != "passed":
        return Decision("blocked", ["Gate 0 failed: " + "; ".join(gate0.get("reasons") or ["invalid data"])])
    candidates = {g: results[g] for g in CANDIDATE_GATES if g in results}
    ok = {g: r for g, r in candidates.items() if healthy(r)}
    if not ok:
        why = [f"{g}: " + ("; ".join(r.get("reasons") or []) or r.get("status", "missing")) for g, r in candidates.items()]
        return Decision("blocked", ["no healthy candidate (every one failed or is degenerate)", *why])
    control = results.get("minirocket") or {}
    verdict = (control.get("comparison") or {}).get("verdict")
    if verdict == "control_wins":
        c = control["comparison"]
        return Decision("investigate", [f"the MiniRocket control (F1 {c['f1']:.3f}) matches or beats the "
                                        f"baseline (F1 {c['baseline_f1']:.3f}): check labels and splits"])
    ranked = sorted(ok, key=lambda g: (_m(ok[g], "f1_weighted"), g == "baseline"), reverse=True)
    if production is None:
        best = ranked[0]
        return Decision("ship", [f"no production model yet: {best} is healthy (F1 {_m(ok[best], 'f1_weighted'):.3f})"],
                        candidate=best)
    all_rules: list[Rule] = []
    for g in ranked:
        rules = _compare(g, ok[g], production, policy, (bootstrap or {}).get(g))
        all_rules += rules
        if all(r.passed for r in rules):
            return Decision("ship", [f"{g} beats production under the policy"], candidate=g, rules=all_rules)
    return Decision("revert", ["no candidate beats production under the policy; production stays"],
                    rules=all_rules)


def _compare(name: str, cand: dict, prod: dict, p: Policy, boot: dict | None) -> list[Rule]:
    pm = prod.get("metrics") or {}
    f1, pf1 = _m(cand, "f1_weighted"), pm.get("f1_weighted")
    rules = [Rule(f"{name}: F1 > production + {p.f1_margin}", f1 > pf1 + p.f1_margin, f"{f1:.3f} vs {pf1:.3f}")]
    pr, ppr = _m(cand, "pr_auc"), pm.get("pr_auc")
    if pr is not None and ppr is not None:
        rules.append(Rule(f"{name}: PR-AUC not lower (tolerance {p.pr_auc_tolerance})",
                          pr >= ppr - p.pr_auc_tolerance, f"{pr:.3f} vs {ppr:.3f}"))
    b, pb = _m(cand, "brier"), pm.get("brier")
    rules.append(Rule(f"{name}: Brier not higher (tolerance {p.brier_tolerance})", b <= pb + p.brier_tolerance,
                      f"{b:.3f} vs {pb:.3f}"))
    if p.require_bootstrap:
        low = (boot or {}).get("f1_weighted", {}).get("ci_low")
        rules.append(Rule(f"{name}: paired-bootstrap F1 CI above 0", low is not None and low > 0,
                          f"ci_low {low}" if low is not None else "no bootstrap given"))
    ece, pece = _m(cand, "ece"), pm.get("ece")
    if ece is not None and pece is not None:  # reported, never decisive alone
        rules.append(Rule(f"{name}: ECE (15 bins, reported only)", True, f"{ece:.3f} vs {pece:.3f}"))
    return rules


def apply_approval(d: Decision, answer: dict | None, timeout_s: int) -> Decision:
    """A person's answer to a ship (``{"approve", "note"}``, or None when nobody answered within
    ``timeout_s``) turned into the decision: only an approval ships; production stays otherwise."""
    if answer is None:
        return Decision("revert", d.reasons + [f"ship not approved within {timeout_s} s; production stays"],
                        d.candidate, d.rules)
    note = f": {answer['note']}" if answer.get("note") else ""
    if not answer.get("approve"):
        return Decision("revert", d.reasons + ["ship rejected by a person" + note], d.candidate, d.rules)
    return Decision("ship", d.reasons + ["ship approved" + note], d.candidate, d.rules)

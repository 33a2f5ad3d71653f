"""The ship / revert / investigate / blocked decision, as a pure function of gate results and
of the predictions behind them.

Every comparison is made on the same windows, paired (moola.evaluation.stats):
- candidates and the control on the pooled walk-forward validation windows (each window
  predicted by a model trained only on data before it);
- candidates and production on the subset of those windows that start after the last window
  production was trained on (``Evidence.production``, re-scored by the caller with production's
  own normaliser). Numbers recorded when production shipped are shown, never decisive.

Order of the rules (the first that applies wins):
1. ``blocked``: Gate 0 failed, or no candidate is healthy (every one failed or is degenerate).
2. ``investigate``: the MiniRocket control beats the best candidate with the paired-bootstrap
   95% CI of the F1 difference above 0. A point win the CI cannot separate is a warning on the
   decision, not a halt. ``Policy.control_rule="point"`` keeps the seed's rule (any point win
   of the control over the baseline halts).
3. ``ship``: no production model yet -> the best healthy candidate (by pooled F1); else a
   candidate whose F1 beats production's by more than ``f1_margin`` with the one-sided
   bootstrap test passing Holm's correction over the healthy candidates (with one candidate:
   the 95% CI lower bound above the margin), and whose Brier/PR-AUC are not worse beyond
   tolerance on the same windows. Of those that qualify, the largest F1 gain ships.
4. ``revert``: nothing qualifies -> production stays; the reasons give the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moola.core.errors import ConfigError, config_error
from moola.evaluation.paired import PairedEvidence, interval
from moola.evaluation.stats import holm, holm_level, paired_evidence
from moola.gates.graph import CANDIDATE_GATES, CONTROL_GATE
from moola.gates.predictions import Scored
from moola.gates.result import GateResult

Action = Literal["ship", "revert", "investigate", "blocked"]
# Walk-forward folds the `gates` flow decides on by default: 3 blocks of 20 windows on the
# sample data give 60 pooled windows (the F1 standard error falls from ~0.10 at 20 windows to
# ~0.06), at about twice the training time of one fold (the earlier folds train on less data).
DECISION_FOLDS = 3


class Policy(BaseModel):
    """Every threshold of the decision and of re-validation, in one place."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    f1_margin: float = Field(0.0, ge=0, description="candidate F1 must exceed production F1 by more than this "
                             "(the lower bound of its confidence interval must, besides the permutation test)")
    pr_auc_tolerance: float = Field(0.02, ge=0, description="non-inferiority: the lower bound of the candidate's "
                                    "PR-AUC difference must be above minus this")
    brier_tolerance: float = Field(0.02, ge=0, description="non-inferiority: the upper bound of the candidate's "
                                   "Brier difference must be below this")
    alpha: float = Field(0.05, gt=0, lt=1, description="1 - confidence of the intervals; the one-sided "
                         "ship test runs at alpha/2, Holm-corrected over the candidates")
    n_boot: int = Field(2000, ge=200, description="bootstrap resamples")
    n_perm: int = Field(9999, ge=999, description="random swaps of the permutation test when too many groups "
                        "disagree to enumerate every swap")
    detectable_gain: float = Field(0.05, gt=0, lt=1, description="the F1 gain the decision says how many "
                                   "windows would be needed to detect (80% power)")
    control_rule: Literal["evidence", "point"] = Field(
        "evidence", description="evidence: investigate only when the control's F1 lead has its CI above 0; "
        "point: the seed's rule, any point lead of the control over the baseline")
    revalidate_margin: float = Field(0.02, ge=0, lt=1, description="nightly: production is degraded once the "
                                     "evidence says its Brier score is worse than a fresh model's by more "
                                     "than this, on windows it has never seen")
    revalidate_alpha: float = Field(0.05, gt=0, lt=1, description="nightly: the chance of ever calling a "
                                    "healthy production version degraded, over its whole life")


def load_policy(values: dict | None) -> Policy:
    """A Policy from a flow parameter; ConfigError naming each bad field (``policy.f1_margin: ...``)."""
    from pydantic import ValidationError

    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"policy: expected a mapping of Policy fields, found {values!r}")
    try:
        return Policy(**(values or {}))
    except ValidationError as exc:
        raise config_error(exc, where="policy.") from None


@dataclass
class Evidence:
    """What the comparisons are made on. ``gates``: pooled validation predictions per gate;
    ``production``: production re-scored on the windows after its training data (None when it
    could not be: ``production_note`` says why); ``notes``: caveats to show on the decision."""

    gates: dict[str, Scored] = field(default_factory=dict)
    production: Scored | None = None
    production_note: str = ""
    notes: list[str] = field(default_factory=list)


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
    evidence: dict[str, PairedEvidence] = field(default_factory=dict)  # behind the rules, by comparison
    notes: list[str] = field(default_factory=list)  # caveats, and what the evidence covered
    production_windows: list[str] = field(default_factory=list)  # compared with production: not reused

    def to_dict(self) -> dict:
        return {"action": self.action, "reasons": self.reasons, "candidate": self.candidate,
                "rules": [r.__dict__ for r in self.rules],
                "evidence": {k: e.model_dump(mode="json") for k, e in self.evidence.items()}, "notes": self.notes,
                "production_windows": self.production_windows}

    @classmethod
    def from_dict(cls, record: dict) -> "Decision":
        """A decision as recorded (``to_dict``, in experiment_results.jsonl), typed again."""
        return cls(record["action"], list(record["reasons"]), record.get("candidate"),
                   [Rule(**r) for r in record.get("rules") or []],
                   {k: PairedEvidence.model_validate(e) for k, e in (record.get("evidence") or {}).items()},
                   list(record.get("notes") or []), list(record.get("production_windows") or []))


def healthy(result: GateResult | None) -> bool:
    return result is not None and result.status == "passed" and result.degenerate is False


def pooled_f1(result: GateResult | None) -> float | None:
    """The gate's weighted F1 over every walk-forward validation window (its last fold's when
    it recorded no pooled metrics)."""
    m = result.headline if result is not None else None
    return m.f1_weighted if m is not None else None


def decide(results: dict[str, GateResult], production: dict | None = None, policy: Policy | None = None,
           evidence: Evidence | None = None) -> Decision:
    """``results``: gate name -> its result.json; ``production``: the production model's
    card (``{"metrics": {...}}``, shown only) or None; ``evidence``: the predictions every
    comparison is made on (without it, nothing can beat a production model)."""
    policy = policy or Policy()
    evidence = evidence or Evidence()
    gate0 = results.get("validate")
    if gate0 is not None and gate0.status != "passed":
        return Decision("blocked", ["Gate 0 failed: " + "; ".join(gate0.reasons or ["invalid data"])])
    candidates = {g: results[g] for g in CANDIDATE_GATES if g in results}
    ok = {g: r for g, r in candidates.items() if healthy(r)}
    if not ok:
        why = [f"{g}: " + ("; ".join(r.reasons) or r.status) for g, r in candidates.items()]
        return Decision("blocked", ["no healthy candidate (every one failed or is degenerate)", *why])
    ranked = sorted(ok, key=lambda g: (pooled_f1(ok[g]), g == "baseline"), reverse=True)
    halt, notes, control_ev = control_check(results, ranked[0], evidence, policy)
    notes = list(evidence.notes) + notes
    if halt:
        return Decision("investigate", [halt], evidence=control_ev, notes=notes)
    if production is None:
        best = ranked[0]
        return Decision("ship", [f"no production model yet: {best} is healthy (pooled F1 {pooled_f1(ok[best]):.3f})"],
                        candidate=best, evidence=control_ev, notes=notes)
    d = against_production(ranked, production, policy, evidence)
    d.evidence = {**control_ev, **d.evidence}
    d.notes = notes + d.notes
    return d


def control_check(results: dict[str, GateResult], best: str, evidence: Evidence, policy: Policy) -> tuple[str | None, list[str], dict]:
    """(reason to halt or None, notes, evidence) for the MiniRocket control against ``best``."""
    control = results.get(CONTROL_GATE)
    if policy.control_rule == "point":
        base, ctrl = results.get("baseline"), control
        if pooled_f1(ctrl) is None or pooled_f1(base) is None:
            return None, ["no control result: the control rule was not applied"], {}
        if pooled_f1(ctrl) >= pooled_f1(base):
            return (f"the MiniRocket control (F1 {pooled_f1(ctrl):.3f}) matches or beats the baseline "
                    f"(F1 {pooled_f1(base):.3f}) (point rule): check labels and splits"), [], {}
        return None, [], {}
    if CONTROL_GATE not in evidence.gates or best not in evidence.gates:
        # no predictions to pair: Gate 2's own verdict (the same statistics, against the baseline)
        cmp = control.comparison if control is not None else None
        if cmp is not None and cmp.verdict == "control_wins":
            return (f"the MiniRocket control beats the baseline (Gate 2: F1 {cmp.f1:.3f} vs "
                    f"{cmp.baseline_f1:.3f}): check labels and splits"), [], {}
        return None, ["no control predictions: the control rule was applied from Gate 2's verdict only"
                      if cmp is not None and cmp.verdict else "no control result: the control rule was not applied"], {}
    b = evidence.gates[best]
    c = evidence.gates[CONTROL_GATE].subset(b.ids)
    e = paired_evidence(b.y, b.proba, c.proba, b.positive, 0.0, policy.n_boot, 0, policy.alpha, b.groups,
                        policy.n_perm, policy.detectable_gain)
    key = f"control vs {best}"
    if e.f1_weighted.ci_low > 0:
        return (f"the MiniRocket control beats the best candidate ({best}): F1 {interval(e)}: "
                "check labels and splits"), [], {key: e}
    if e.f1_weighted.diff >= 0:
        return None, [f"the MiniRocket control leads {best} by F1 {interval(e)}: within noise, not a halt"], {key: e}
    return None, [], {key: e}


def against_production(ranked: list[str], production: dict, p: Policy, evidence: Evidence) -> Decision:
    """Ship the candidate that beats production on the same windows, or keep production."""
    shown = recorded_rule(production)
    prod = evidence.production
    if prod is None or not len(prod.ids):
        why = evidence.production_note or "production was not re-scored on these windows"
        return Decision("revert", [f"no paired comparison with production ({why}); production stays"],
                        rules=[shown])
    comparable = [g for g in ranked if g in evidence.gates and set(prod.ids) <= set(evidence.gates[g].ids)]
    if not comparable:
        return Decision("revert", ["no candidate was scored on production's windows; production stays"], rules=[shown])
    ev = {g: paired_evidence(prod.y, prod.proba, evidence.gates[g].subset(prod.ids).proba, prod.positive,
                             p.f1_margin, p.n_boot, 0, p.alpha, prod.groups, p.n_perm, p.detectable_gain)
          for g in comparable}
    pvals = {g: ship_p(e) for g, e in ev.items()}
    beats = holm(pvals, p.alpha / 2)
    rules, qualified = [shown], []
    for g in comparable:
        r = candidate_rules(g, ev[g], beats[g], holm_level(pvals, g, p.alpha / 2), len(comparable), p)
        rules += r
        if all(x.passed for x in r):
            qualified.append(g)
    evid = {f"{g} vs production": e for g, e in ev.items()}
    if qualified:
        g = max(qualified, key=lambda c: ev[c].f1_weighted.diff)
        return Decision("ship", [f"{g} beats production on the same windows: F1 {interval(ev[g])}"],
                        candidate=g, rules=rules, evidence=evid, notes=[detectable_note(ev[g])],
                        production_windows=list(prod.ids))
    best = max(comparable, key=lambda c: ev[c].f1_weighted.diff)
    failed = [x.name for x in rules if not x.passed and x.name.startswith(best)]
    return Decision("revert", [f"no candidate beats production: {best} F1 difference {interval(ev[best])}: "
                               + ("not enough evidence" if any("F1" in f for f in failed) else
                                  "F1 better, but not shown: " + "; ".join(failed).replace(f"{best}: ", ""))
                               + "; production stays"], rules=rules, evidence=evid,
                    notes=[detectable_note(ev[best])], production_windows=list(prod.ids))


def ship_p(e: PairedEvidence) -> float:
    """The one-sided p-value a candidate's F1 gain is tested on: the sign-flip permutation test
    (exact when few windows disagree); with a margin, also the bootstrap test against it."""
    return e.p_sign_flip if not e.margin else max(e.p_sign_flip, e.p_not_above_margin)


def candidate_rules(g: str, e: PairedEvidence, beats: bool, level: float, m: int, p: Policy) -> list[Rule]:
    brier, pr = e.brier, e.pr_auc
    correction = f"Holm over {m} candidates" if m > 1 else "one candidate"
    test = "sign-flip permutation" + (", exact" if e.sign_flip_exact else "")
    margin = f"; bootstrap p of a gain above {p.f1_margin}: {e.p_not_above_margin:.4f}" if p.f1_margin else ""
    rules = [Rule(f"{g}: F1 beats production by more than {p.f1_margin} ({test}, {correction})", beats,
                  f"{interval(e)}; one-sided p {e.p_sign_flip:.4f}{margin} vs level {level:.4f}"),
             Rule(f"{g}: Brier non-inferior within {p.brier_tolerance} (CI upper bound)",
                  brier.ci_high < p.brier_tolerance, f"{brier.b:.3f} vs {brier.a:.3f} ({interval(e, 'brier')})")]
    if pr.ci_low is not None:
        rules.append(Rule(f"{g}: PR-AUC non-inferior within {p.pr_auc_tolerance} (CI lower bound)",
                          pr.ci_low > -p.pr_auc_tolerance, f"{pr.b:.3f} vs {pr.a:.3f} ({interval(e, 'pr_auc')})"))
    mc = e.mcnemar
    rules.append(Rule(f"{g}: exact McNemar on correctness (reported only)", True,
                      f"only {g} right on {mc.b_only}, only production on {mc.a_only}: p {mc.p:.3f}"))
    return rules


def detectable_note(e: PairedEvidence) -> str:
    """What the windows of one comparison can show, in words."""
    d = e.detectable.f1_weighted
    return (f"on these {e.n} windows ({e.groups} groups) the test detects an F1 difference of "
            f"{d.difference:.3f} with {d.power:.0%} power; a gain of {d.gain:.2f} needs about "
            f"{d.windows_for_gain} windows")


def recorded_rule(production: dict) -> Rule:
    """Production's numbers from when it shipped, on other windows: shown, never decisive."""
    m = production.get("metrics") or {}
    f1 = m.get("f1_weighted")
    return Rule("production's recorded F1 when it shipped (other windows; shown only)", True,
                f"{f1:.3f}" if isinstance(f1, (int, float)) else "not recorded")


def apply_approval(d: Decision, answer: dict | None, timeout_s: int) -> Decision:
    """A person's answer to a ship (``{"approve", "note"}``, or None when nobody answered within
    ``timeout_s``) turned into the decision: only an approval ships; production stays otherwise."""
    def keep(action, reasons):
        return Decision(action, reasons, d.candidate, d.rules, d.evidence, d.notes, d.production_windows)
    if answer is None:
        return keep("revert", d.reasons + [f"ship not approved within {timeout_s} s; production stays"])
    note = f": {answer['note']}" if answer.get("note") else ""
    if not answer.get("approve"):
        return keep("revert", d.reasons + ["ship rejected by a person" + note])
    return keep("ship", d.reasons + ["ship approved" + note])

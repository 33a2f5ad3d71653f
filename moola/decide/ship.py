"""The ship protocol: decide against production and ship, as a compare-and-swap on the registry's
production pointer. Pure of Prefect: the effects that take time or a person (re-scoring production,
the serving check, the approval pause) are passed in, so the `decide` flow runs them as its tasks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from moola.decide.decision import Decision, Evidence, Policy, apply_approval, decide
from moola.decide.evidence import gather, with_groups
from moola.gates.result import GateOutcome, GateResult
from moola.registry.card import card_for
from moola.registry.store import Pointer, Registry

log = logging.getLogger("moola.decide.ship")
ATTEMPTS = 8  # decisions re-made because production changed under them, before giving up


@dataclass
class Effects:
    """What a decision asks of the world. ``rescore(production pointer, card, folder, evidence, used)``:
    the evidence with production re-scored on the candidates' windows (moola.decide.evidence);
    ``serves(candidate, folder)``: (ok, detail) of the fresh-process serving check (moola.serve.check);
    ``approve(decision)``: a person's answer, {"approve", "note"}, or None when nobody answered."""

    rescore: Callable[[Pointer, dict, Path, Evidence, frozenset], Evidence] | None
    serves: Callable[[str, Path], tuple[bool, str]] | None
    approve: Callable[[Decision], dict | None] | None = None
    approval_timeout_s: int = 3600


def refuse(results: dict[str, GateResult], candidate: str, why: str) -> dict[str, GateResult]:
    """The results with ``candidate`` failed for ``why``: the next decision passes over it."""
    return {**results, candidate: results[candidate].failed_for(why)}


def decide_and_ship(reg: Registry, gates: dict[str, GateOutcome], policy: Policy, effects: Effects,
                    data: Path | None = None) -> tuple[Decision, Pointer | None, Pointer | None] | None:
    """Decide against production and ship, as a compare-and-swap: if another decide changed
    production between our read and our write, decide again against the new one. A candidate
    that does not serve is refused and the decision is made again without it. Without ``data``
    (the labelled file the gates ran on) production is not re-scored and nothing is served first.
    Returns (decision, production before, production after), or None if it never settled."""
    approved_for, notes = None, []
    results = {name: g.result for name, g in gates.items()}
    gathered, rescored = gather(gates), {}
    if data is not None and gathered.gates:
        gathered = with_groups(gathered, data)
    for _ in range(ATTEMPTS):
        before, prod_card = reg.production_card()
        evidence = gathered
        if before is not None:
            key = before.key
            if key not in rescored:
                rescored[key] = (effects.rescore(before, prod_card, reg.folder(before), gathered,
                                                 reg.windows_compared_with(before))
                                 if data is not None and effects.rescore is not None else
                                 Evidence(gathered.gates, None, "no data to re-score production on",
                                          list(gathered.notes)))
            evidence = rescored[key]
        d = decide(results, prod_card, policy, evidence)
        d.reasons = notes + d.reasons
        folder = gates[d.candidate].folder if d.action == "ship" else None
        if d.action == "ship" and folder is None:
            why = f"{d.candidate}: no gate folder given to ship from"
            notes.append(why)
            results = refuse(results, d.candidate, why)
            continue
        if d.action == "ship" and data is not None and effects.serves is not None:
            ok, detail = effects.serves(d.candidate, folder)
            if not ok:
                why = f"{d.candidate} does not serve: {detail}"
                notes.append(why)
                results = refuse(results, d.candidate, why)
                continue
            d.reasons.append(f"{d.candidate} serves: {detail}")
        if d.action == "ship" and effects.approve is not None and d.candidate != approved_for:
            d = apply_approval(d, effects.approve(d), effects.approval_timeout_s)
            approved_for = d.candidate if d.action == "ship" else None
        if d.action != "ship":
            return d, before, before
        after = reg.ship(d.candidate, folder, card_for(results[d.candidate], before),
                         "; ".join(d.reasons), expected=before)
        if after is not None:
            return d, before, after
        log.info("production changed while deciding; deciding again against the new production")
    return None

"""The `decide` flow: a thin wrapper over moola.decide.decision.decide, plus the registry writes."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from moola_flows.report import STATE_NAMES, publish_decision
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Completed, Failed

from moola.core.errors import ConfigError
from moola.decide.decision import Decision, Evidence, load_policy
from moola.decide.evidence import rescore_production
from moola.decide.ship import Effects, decide_and_ship
from moola.gates.graph import CANDIDATE_GATES
from moola.gates.result import GateOutcome
from moola.serve.check import check_serves
from moola.settings import registry_from_settings


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Approval(RunInput):
    """The form a person fills in the Prefect UI before a ship goes out."""

    approve: bool = False
    note: str = ""


@flow(name="approve-ship", flow_run_name="approve {candidate}")
def approve_ship(candidate: str, summary: str, timeout_s: int) -> dict:
    """Pauses for the Approval form. Its own flow run: a timeout fails this run, not `decide`."""
    get_run_logger().info("ship of %s waits for approval in the Prefect UI (%d s): %s", candidate, timeout_s, summary)
    answer = pause_flow_run(wait_for_input=Approval, timeout=timeout_s, poll_interval=min(10, max(1, timeout_s // 4)))
    return {"approve": answer.approve, "note": answer.note}


def wait_for_approval(d: Decision, timeout_s: int) -> dict | None:
    """A person's answer from the Prefect UI; None when nobody answered in time (FlowPauseTimeout)."""
    state = approve_ship(d.candidate, "; ".join(d.reasons), timeout_s, return_state=True)
    return state.result() if state.is_completed() else None


@task(task_run_name="does {candidate} serve?")
def serving_check(candidate: str, folder: Path, data: str, assume_row_order: bool = False) -> tuple[bool, str]:
    """The candidate loaded in a fresh process as `moola predict` would, against its own predictions."""
    c = check_serves(folder, Path(data), assume_row_order)
    return c.ok, c.detail


@task(task_run_name="re-score production v{version} on the candidates' windows", cache_policy=NONE)
def rescore(version: int, folder: str, expected_sha256: str | None, card: dict, data: str, evidence: Evidence,
            assume_row_order: bool = False, bar_seconds: int | None = None,
            used: frozenset[str] = frozenset()) -> Evidence:
    """``evidence`` with production's probabilities on the candidates' pooled windows that start
    after its training data, less those earlier decisions used (moola.decide.evidence.rescore_production)."""
    on = next((evidence.gates[g] for g in CANDIDATE_GATES if g in evidence.gates), None)
    if on is None:
        return Evidence(evidence.gates, None, "no candidate predictions to compare on", list(evidence.notes))
    scored, what, notes = rescore_production(Path(folder), card, Path(data), on, assume_row_order, bar_seconds,
                                             expected_sha256, used=used)
    get_run_logger().info("%s", what)
    return Evidence(evidence.gates, scored, what, [*evidence.notes, *notes] + ([what] if scored is not None else []))


@flow(name="decide", flow_run_name="decide")
def decide_flow(gates: dict[str, GateOutcome], artifacts: str | None = None, require_approval: bool = False,
                policy: dict | None = None, timing: dict | None = None, approval_timeout_s: int = 3600,
                data: str | None = None, assume_row_order: bool = False, bar_seconds: int | None = None,
                publish: bool = True, pods: list[dict] | None = None, moves: list[dict] | None = None):
    """``gates``: each gate's result and folder (the `gates` flow's run of them);
    ``pods``: the pods the run used (uptime and cost so far, the gates each ran, why one was lost);
    ``moves``: the gates that moved to another pod, and why (moola.pods.spread).
    ``data``: the labelled file the gates ran on; with it, a candidate must serve before it ships.
    Production is re-scored on ``data`` (the candidates' pooled windows after its training end).
    ``publish``: put the decision artifact on this run (the `gates` flow puts it on its own run).

    Ends in a state named after the decision: Shipped, Reverted (Completed), Investigate, Blocked
    (Failed), with the decision's reasons as its message and the recorded decision as its data."""
    log = get_run_logger()
    try:
        pol = load_policy(policy)
    except ConfigError as exc:
        return Failed(message=f"invalid policy, nothing decided: {exc}")
    reg = registry_from_settings(root=artifacts)
    for gate, g in gates.items():
        reg.append({"kind": "gate_result", "gate": gate, "dir": str(g.folder) if g.folder else None,
                    "result": g.result.model_dump(mode="json")})
    effects = Effects(
        rescore=lambda before, card, folder, evidence, used: rescore(
            before.version, str(folder), reg.expected_manifest(folder), card, data, evidence, assume_row_order,
            bar_seconds, used),
        serves=lambda candidate, folder: serving_check(candidate, folder, data, assume_row_order),
        approve=(lambda d: wait_for_approval(d, approval_timeout_s)) if require_approval else None,
        approval_timeout_s=approval_timeout_s)
    outcome = decide_and_ship(reg, gates, pol, effects, Path(data) if data is not None else None)
    if outcome is None:
        return Failed(message="production kept changing while deciding (another decide running?); nothing shipped")
    d, before, after = outcome
    if d.action == "revert" and reg.is_degraded(before):
        # production had been found degraded (nightly re-validation) and nothing replaces it
        after, reverted = reg.revert_to_last_good("production is degraded and no candidate qualifies",
                                                  mark_degraded=False)
        d.reasons.append(f"production was degraded: returned to {after.label}" if reverted
                         else "production is degraded and there is no earlier good version: investigate")
    record = {**d.to_dict(), "production_before": before.stored() if before else None,
              "production_after": after.stored() if after else None}
    reg.append({"kind": "decision", "at": _now(), "decision": record, "timing": timing,
                **({"pods": pods} if pods else {}), **({"moves": moves} if moves else {})})
    if publish:
        publish_decision(d, before, after, {k: g.result for k, g in gates.items()}, reg.records("decision"),
                         pods, moves)
    log.info("decision %s: %s", d.action, "; ".join(d.reasons))
    for w in d.notes:
        log.info("note: %s", w)
    return decision_state(record)


def decision_state(record: dict):
    """The Prefect state a decision ends a run in: named so the run list reads as outcomes."""
    message = f"{record['action']}: " + "; ".join(record["reasons"])
    if record["action"] in ("blocked", "investigate"):
        return Failed(name=STATE_NAMES[record["action"]], message=message, data=record)
    return Completed(name=STATE_NAMES[record["action"]], message=message, data=record)

"""The `decide` flow: a thin wrapper over moola.decision.decide, plus the registry writes."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from moola.decision import Policy, decide
from moola.registry import Registry


@flow(name="decide")
def decide_flow(results: dict, dirs: dict, artifacts: str = "artifacts", require_approval: bool = False,
                policy: dict | None = None, timing: dict | None = None):
    log = get_run_logger()
    reg = Registry(artifacts)
    for gate, res in results.items():
        reg.append({"kind": "gate_result", "gate": gate, "dir": dirs.get(gate), "result": res})
    state = reg.read()
    production = state["production"]
    prod_card = None
    if production is not None:
        import json
        prod_card = json.loads((Path(production["path"]) / "result.json").read_text())
    d = decide(results, prod_card, Policy(**(policy or {})))
    before = production
    after = before
    if d.action == "ship" and require_approval:
        from prefect.flow_runs import pause_flow_run
        try:
            approved = pause_flow_run(wait_for_input=bool, timeout=3600)
        except Exception:  # timed out: nothing ships
            approved = False
        if not approved:
            d.action, d.reasons = "revert", d.reasons + ["ship not approved in time; production stays"]
    if d.action == "ship":
        pointer = reg.register(d.candidate, Path(dirs[d.candidate]),
                               {"metrics": results[d.candidate].get("metrics"), "gate": d.candidate,
                                "data_manifest_sha256": results[d.candidate].get("data_manifest_sha256"),
                                "parent": before})
        after = reg.set_production(pointer, "ship", "; ".join(d.reasons))["production"]
    reg.append({"kind": "decision", "decision": {**d.to_dict(), "production_before": before,
                                                 "production_after": after}, "timing": timing})
    rows = "\n".join(f"| {r.name} | {'pass' if r.passed else 'FAIL'} | {r.detail} |" for r in d.rules)
    create_markdown_artifact(key="decision", markdown=f"# Decision: **{d.action}**\n\n" + "\n".join(
        f"- {r}" for r in d.reasons) + (f"\n\n| rule | result | detail |\n|---|---|---|\n{rows}" if rows else ""))
    log.info("decision %s: %s", d.action, "; ".join(d.reasons))
    if d.action in ("blocked", "investigate"):
        return Failed(message=f"{d.action}: " + "; ".join(d.reasons))
    return d.to_dict()

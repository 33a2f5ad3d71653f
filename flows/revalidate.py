"""The re-validation flow (deployment `gates/revalidate`, nightly): is production still healthy?

Scores production and two challengers trained strictly before them on the labelled windows that
arrived since production was trained, adds them to its ledger, and tests the whole ledger
(moola.decide.revalidate). Healthy: nothing changes. Degraded: production stays where it is (it is never
switched to a version nobody scored on the new windows) and a `gates/full` run starts on the
current data, when that deployment exists; what ships is then that run's decision.

    python -m flows.revalidate --data data/sample/train.parquet
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from moola_flows.params import flow_parser
from moola_flows.report import REVALIDATION_STATES, revalidation_description, revalidation_markdown
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed

from moola.core.errors import EXIT_INFRA, EXIT_OK
from moola.data.config import DEFAULT_DATA, DataConfig
from moola.decide.decision import load_policy
from moola.decide.revalidate import read_card, revalidation_verdict, score_night
from moola.settings import registry_from_settings

GATES_DEPLOYMENT = "gates/full"


@task(task_run_name="score production v{version} and the challengers on tonight's windows", cache_policy=NONE)
def score(version: int, path: str, card: dict, data: str, ledger: list[dict], night: str, val_size: float,
          folds: int, manifest_sha256: str | None = None) -> tuple[list[dict], list[str]]:
    return score_night(Path(path), card, Path(data), ledger, night, DataConfig(val_size=val_size, folds=folds),
                       expected_manifest_sha256=manifest_sha256)


def start_gates(data: str, artifacts: str | None) -> str:
    """Start a `gates/full` run on ``data`` without waiting for it; what happened, in words."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    params = {"data": data, **({"artifacts": artifacts} if artifacts else {})}
    try:
        run = run_deployment(GATES_DEPLOYMENT, parameters=params, timeout=0, as_subflow=False)
    except ObjectNotFound:
        return (f"no `{GATES_DEPLOYMENT}` deployment to start: run the gates yourself "
                f"(python -m flows.gates --data {data})")
    return f"started a `{GATES_DEPLOYMENT}` run on the current data: {run.name} ({run.id})"


# Prefect name "gates": both deployments live under one flow, `gates/full` and `gates/revalidate`.
@flow(name="gates", flow_run_name="revalidate")
def revalidate(data: str, val_size: float = DEFAULT_DATA.val_size, folds: int = DEFAULT_DATA.folds,
               artifacts: str | None = None, policy: dict | None = None, start_gates_run: bool = True):
    """Is production still healthy, on the windows that arrived since it shipped?

    Args:
        data: Every labelled window so far (Parquet); the new ones are found through production's ledger.
        val_size: Gate 0's validation windows per fold (a count or a fraction), as for the gates.
        folds: Gate 0's walk-forward folds, as for the gates.
        artifacts: Registry root; default MOOLA_ARTIFACTS (environment or .env), else ./artifacts.
        policy: Fields of the decision's Policy, e.g. {"revalidate_margin": 0.02, "revalidate_alpha": 0.05}.
        start_gates_run: On Degraded, start a gates/full run on this data.
    """
    log = get_run_logger()
    p = load_policy(policy)
    reg = registry_from_settings(root=artifacts)
    prod = reg.production()
    if prod is None:
        log.info("no production model: nothing to re-validate")
        out = {"action": "none", "reasons": ["no production model"]}
        return Completed(name=REVALIDATION_STATES["none"], message="no production model", data=out)
    folder = reg.folder(prod)
    card = read_card(folder)
    ledger = reg.ledger(prod)
    night = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    # invalid data or a tampered model fails here, registry and ledger untouched
    rows, notes = score(prod.version, str(folder), card, data, ledger, night, val_size, folds,
                        reg.expected_manifest(folder))
    reg.extend_ledger(prod, rows)
    ledger = reg.ledger(prod)
    recorded = ((card.get("pooled") or card.get("metrics")) or {}).get("f1_weighted")
    verdict = revalidation_verdict(ledger, p, recorded)
    action = "healthy" if verdict.healthy else "degraded"
    reasons = list(verdict.reasons) + notes
    started = None
    if not verdict.healthy:
        started = start_gates(data, artifacts) if start_gates_run else "no gates run started (start_gates_run is off)"
        reasons.append(f"production stays {prod.label}; {started}")
    reg.append({"kind": "revalidation", "revalidation": {
        "action": action, "reasons": reasons, "data": str(data), "production": prod.stored(), "new_windows": len(rows),
        "summary": verdict.summary, "rules": verdict.to_dict()["rules"]}})
    create_markdown_artifact(key="revalidation", markdown=revalidation_markdown(prod, action, reasons, verdict.rules),
                             description=revalidation_description(prod, action, reasons))
    log.info("revalidation %s: %s", action, "; ".join(reasons))
    out = {"action": action, "reasons": reasons, "production": prod.stored(), "summary": verdict.summary}
    name = REVALIDATION_STATES[action]
    if action == "degraded" and started is not None and not started.startswith("started"):
        return Failed(name=name, message="production is degraded: " + "; ".join(reasons), data=out)
    return Completed(name=name, message=f"{action}: " + "; ".join(reasons), data=out)


def build_parser():
    return flow_parser(revalidate, "python -m flows.revalidate",
                       "Re-validate production once on the windows that arrived since it shipped.")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = revalidate(**vars(args), return_state=True)
    out = state.result(raise_on_failure=False) if state.is_completed() else None
    if isinstance(out, dict):
        print(f"revalidation: {out['action'].upper()}")
        for r in out["reasons"]:
            print(f"  - {r}")
        return EXIT_OK
    print(f"revalidation failed: {state.message}", file=sys.stderr)
    return EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())

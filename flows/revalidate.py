"""The re-validation flow (deployment `gates/revalidate`, nightly): is production still healthy?

Scores the production model on the latest data's validation fold; when it is degenerate there or
its F1 fell below the policy floor against the F1 recorded when it shipped, production returns to
the last good version and the registry records why.

    python -m flows.revalidate --data data/sample/train.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from flows.report import revalidation_markdown
from moola.data.validate import DataConfig
from moola.decision import Policy
from moola.registry import Registry
from moola.revalidate import evaluate_on_latest, revalidation_verdict


@task(task_run_name="score production on the latest validation fold")
def score_production(path: str, data: str, val_size: float, folds: int) -> dict:
    return evaluate_on_latest(Path(path), Path(data), DataConfig(val_size=val_size, folds=folds))


# Prefect name "gates": both deployments live under one flow, `gates/full` and `gates/revalidate`.
@flow(name="gates", flow_run_name="revalidate")
def revalidate(data: str, val_size: float = 0.2, folds: int = 1, artifacts: str = "artifacts",
               policy: dict | None = None):
    log = get_run_logger()
    reg = Registry(artifacts)
    prod = reg.read()["production"]
    if prod is None:
        log.info("no production model: nothing to re-validate")
        return {"action": "none", "reasons": ["no production model"]}
    card = json.loads((Path(prod["path"]) / "card.json").read_text())
    score = score_production(prod["path"], data, val_size, folds)  # invalid data fails here, registry untouched
    verdict = revalidation_verdict(card.get("metrics") or {}, score["metrics"], score["degenerate"],
                                   score["degenerate_reasons"], Policy(**(policy or {})))
    after, action, reasons = prod, "keep", list(verdict.reasons)
    if not verdict.healthy:
        state, reverted = reg.revert_to_last_good("nightly re-validation: " + "; ".join(verdict.reasons))
        after = state["production"]
        action = "revert" if reverted else "degraded"
        reasons.append(f"returned to the last good version, {after['name']} v{after['version']}" if reverted
                       else "no earlier good version to return to: production stays, marked degraded")
    reg.append({"kind": "revalidation", "revalidation": {
        "action": action, "reasons": reasons, "data": str(data), "production_before": prod,
        "production_after": after, "metrics": score["metrics"], "recorded_metrics": card.get("metrics"),
        "rules": verdict.to_dict()["rules"]}})
    create_markdown_artifact(key="revalidation", markdown=revalidation_markdown(prod, action, reasons, verdict.rules))
    log.info("revalidation %s: %s", action, "; ".join(reasons))
    if action == "degraded":
        return Failed(message="production is degraded and has no earlier good version: " + "; ".join(reasons))
    return {"action": action, "reasons": reasons, "production": after}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.revalidate")
    ap.add_argument("--data", required=True)
    ap.add_argument("--val-size", type=float, default=0.2)
    ap.add_argument("--folds", type=int, default=1)
    ap.add_argument("--artifacts", default="artifacts")
    args = ap.parse_args(argv)
    state = revalidate(data=args.data, val_size=args.val_size, folds=args.folds, artifacts=args.artifacts,
                       return_state=True)
    if state.is_completed():
        out = state.result()
        print(f"revalidation: {out['action'].upper()}")
        for r in out["reasons"]:
            print(f"  - {r}")
        return 0
    print(f"revalidation failed: {state.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

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
from prefect.states import Completed, Failed

from flows.report import REVALIDATION_STATES, revalidation_description, revalidation_markdown
from moola.data.validate import DEFAULT_DATA, DataConfig
from moola.decision import Policy
from moola.settings import registry_from_settings
from moola.revalidate import evaluate_on_latest, revalidation_verdict


@task(task_run_name="score production on the latest validation fold")
def score_production(path: str, data: str, val_size: float, folds: int, manifest_sha256: str | None = None) -> dict:
    return evaluate_on_latest(Path(path), Path(data), DataConfig(val_size=val_size, folds=folds),
                              expected_manifest_sha256=manifest_sha256)


MAX_RESCORES = 5


# Prefect name "gates": both deployments live under one flow, `gates/full` and `gates/revalidate`.
@flow(name="gates", flow_run_name="revalidate")
def revalidate(data: str, val_size: float = DEFAULT_DATA.val_size, folds: int = DEFAULT_DATA.folds,
               artifacts: str | None = None,
               policy: dict | None = None):
    log = get_run_logger()
    reg = registry_from_settings(root=artifacts)
    for _ in range(MAX_RESCORES):
        prod = reg.read()["production"]
        if prod is None:
            log.info("no production model: nothing to re-validate")
            out = {"action": "none", "reasons": ["no production model"]}
            return Completed(name=REVALIDATION_STATES["none"], message="no production model", data=out)
        folder = reg.folder(prod)
        card = json.loads((folder / "card.json").read_text())
        # invalid data or a tampered model fails here, registry untouched
        score = score_production(str(folder), data, val_size, folds, prod.get("manifest_sha256"))
        verdict = revalidation_verdict(card.get("metrics") or {}, score["metrics"], score["degenerate"],
                                       score["degenerate_reasons"], Policy(**(policy or {})))
        after, action, reasons = prod, "keep", list(verdict.reasons)
        if verdict.healthy:
            break
        # compare-and-swap: degrade only the version scored; if a ship landed meanwhile, score again
        swapped = reg.revert_to_last_good("nightly re-validation: " + "; ".join(verdict.reasons), expected=prod)
        if swapped is None:
            log.info("production changed while re-validating %s v%s; scoring the new production",
                     prod["name"], prod["version"])
            continue
        state, reverted = swapped
        after = state["production"]
        action = "revert" if reverted else "degraded"
        reasons.append(f"returned to the last good version, {after['name']} v{after['version']}" if reverted
                       else "no earlier good version to return to: production stays, marked degraded")
        break
    else:
        return Failed(message="production kept changing while re-validating; nothing was marked")
    reg.append({"kind": "revalidation", "revalidation": {
        "action": action, "reasons": reasons, "data": str(data), "production_before": prod,
        "production_after": after, "metrics": score["metrics"], "recorded_metrics": card.get("metrics"),
        "rules": verdict.to_dict()["rules"]}})
    create_markdown_artifact(key="revalidation", markdown=revalidation_markdown(prod, action, reasons, verdict.rules),
                             description=revalidation_description(prod, action, reasons))
    log.info("revalidation %s: %s", action, "; ".join(reasons))
    name = REVALIDATION_STATES[action]  # Healthy, or Degraded (returned to the last good version, or none left)
    if action == "degraded":
        return Failed(name=name, message="production is degraded and has no earlier good version: " + "; ".join(reasons))
    out = {"action": action, "reasons": reasons, "production": after}
    return Completed(name=name, message=f"{action}: " + "; ".join(reasons), data=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.revalidate")
    ap.add_argument("--data", required=True)
    ap.add_argument("--val-size", type=float, default=DEFAULT_DATA.val_size)
    ap.add_argument("--folds", type=int, default=DEFAULT_DATA.folds)
    ap.add_argument("--artifacts", help="registry root (default: MOOLA_ARTIFACTS, else ./artifacts)")
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

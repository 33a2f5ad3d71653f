"""The `gates` flow (deployment `gates/full`): Gate 0 -> 1 -> 2 | 3 -> 4 | 5 -> decide.

    python -m flows.gates --data data/sample/train.parquet --unlabeled data/sample/unlabeled.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.decide import decide_flow
from flows.pod import acquire_pod, release_pod, stop_pod_hook
from flows.tasks import run_gate
from moola.config import load_gate_config
from moola.errors import ConfigError, DataError
from moola.settings import registry_from_settings

RUNNERS = ("here", "local", "ssh", "runpod")


@flow(name="gates", flow_run_name="gates-{runner}-{preset}",
      on_failure=[stop_pod_hook], on_crashed=[stop_pod_hook], on_cancellation=[stop_pod_hook])
def gates(data: str, unlabeled: str | None = None, val_size: float = 0.2, folds: int = 1, runner: str = "local",
          preset: str = "default", seed: int = 17, config: str | None = None, artifacts: str | None = None,
          require_approval: bool = False, approval_timeout_s: int = 3600, pod_deadline_s: int = 1800):
    check_parameters(runner, preset, config, seed)  # a typo fails the run at once, before any gate
    artifacts = str(registry_from_settings(root=artifacts).root)  # MOOLA_ARTIFACTS when not given
    run_dir = Path(artifacts) / "runs" / (time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    opts = ["--val-size", str(val_size), "--folds", str(folds), "--preset", preset, "--seed", str(seed)]
    common = dict(runner=runner, data=data, options=opts, unlabeled=unlabeled, config=config)
    t0 = time.perf_counter()
    decide_opts = dict(artifacts=artifacts, require_approval=require_approval, approval_timeout_s=approval_timeout_s,
                       data=data)

    # Gate 0 first, on this machine when the gates go to a pod: invalid data must not cost a pod.
    # Transient errors (host not up yet) are retried; invalid data is not.
    v = run_gate(gate="validate", out=str(run_dir / "validate"), return_state=True,
                 **{**common, "runner": "local" if runner == "runpod" else runner})
    if v.is_failed():
        exc = v.result(raise_on_failure=False)
        reasons = list(exc.problems) if isinstance(exc, DataError) else [str(v.message or "invalid data")]
        return outcome(decide_flow({"validate": {"status": "failed", "reasons": reasons}}, {}, return_state=True,
                                   **decide_opts))
    results = {"validate": v.result()}
    try:
        if runner == "runpod":  # one pod for the whole run, stopped in finally (and by the hooks)
            common["endpoint"] = acquire_pod(artifacts, str(flow_run.id), pod_deadline_s)
        results.update(train_gates(run_dir, runner, common))
    finally:
        if runner == "runpod":
            release_pod(artifacts, flow_run.id)
    walls = {name: r["result"]["total_seconds"] for name, r in results.items()}
    return outcome(decide_flow({k: r["result"] for k, r in results.items()}, {k: r["dir"] for k, r in results.items()},
                               timing={"flow_wall_s": time.perf_counter() - t0, "gate_walls_s": walls},
                               return_state=True, **decide_opts))


def outcome(decided):
    """The flow ends as the decision dictates, with its reasons (not Prefect's "1/1 states failed")."""
    return Failed(message=decided.message) if decided.is_failed() else decided.result()


def check_parameters(runner: str, preset: str, config: str | None, seed: int) -> None:
    if runner not in RUNNERS:
        raise ConfigError(f"runner: expected one of {', '.join(RUNNERS)}, found {runner!r}")
    load_gate_config(preset, config, seed)  # raises ConfigError naming the preset or the file


def train_gates(run_dir: Path, runner: str, common: dict) -> dict:
    """Gates 1-5: baseline, then control | pretrain -> transfer | augment."""
    out = lambda g: str(run_dir / g)  # noqa: E731
    results = {"baseline": run_gate(gate="baseline", out=out("baseline"), **common)}
    base = results["baseline"]["dir"]
    if runner in ("local", "here"):
        # one CPU: concurrent torch processes would only fight over its cores
        results["minirocket"] = run_gate(gate="minirocket", out=out("minirocket"), baseline=base, **common)
        results["pretrain"] = run_gate(gate="pretrain", out=out("pretrain"), **common)
        results["transfer"] = run_gate(gate="transfer", out=out("transfer"), baseline=base,
                                       encoder=results["pretrain"]["dir"], **common)
        results["augment"] = run_gate(gate="augment", out=out("augment"), baseline=base, **common)
        return results
    # remote gates that do not depend on each other run concurrently
    control = run_gate.submit(gate="minirocket", out=out("minirocket"), baseline=base, **common)
    augment = run_gate.submit(gate="augment", out=out("augment"), baseline=base, **common)
    pretrain = run_gate.submit(gate="pretrain", out=out("pretrain"), **common)
    transfer = run_gate.submit(gate="transfer", out=out("transfer"), baseline=base,
                               encoder=pretrain.result()["dir"], **common)
    for name, fut in (("minirocket", control), ("augment", augment), ("pretrain", pretrain), ("transfer", transfer)):
        results[name] = fut.result()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.gates")
    ap.add_argument("--data", required=True)
    ap.add_argument("--unlabeled")
    ap.add_argument("--runner", default="local")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--config")
    ap.add_argument("--artifacts", help="registry root (default: MOOLA_ARTIFACTS, else ./artifacts)")
    ap.add_argument("--require-approval", action="store_true")
    args = ap.parse_args(argv)
    state = gates(data=args.data, unlabeled=args.unlabeled, runner=args.runner, preset=args.preset,
                  config=args.config, artifacts=args.artifacts, require_approval=args.require_approval,
                  return_state=True)
    registry = registry_from_settings(root=args.artifacts)
    reg = registry.read()
    last = None
    jsonl = registry.jsonl
    if jsonl.exists():
        lines = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
        last = next((x["decision"] for x in reversed(lines) if "decision" in x), None)
    if last is None:
        print(f"no decision reached: {state.message}", file=sys.stderr)
        return 1
    print(f"decision: {last['action'].upper()}" + (f" ({last['candidate']})" if last.get("candidate") else ""))
    for r in last["reasons"]:
        print(f"  - {r}")
    p = reg["production"]
    print("registry: production = " + (f"{p['name']} v{p['version']} ({registry.folder(p)})" if p else "none")
          + f"; {len(reg['history'])} change(s) in history")
    return 0


if __name__ == "__main__":
    sys.exit(main())

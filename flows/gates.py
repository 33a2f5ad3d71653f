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

from flows.decide import decide_flow
from flows.tasks import run_gate


@flow(name="gates", flow_run_name="gates-{runner}-{preset}")
def gates(data: str, unlabeled: str | None = None, val_size: float = 0.2, folds: int = 1, runner: str = "local",
          preset: str = "default", seed: int = 17, config: str | None = None, artifacts: str = "artifacts",
          require_approval: bool = False):
    run_dir = Path(artifacts) / "runs" / (time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    opts = ["--val-size", str(val_size), "--folds", str(folds), "--preset", preset, "--seed", str(seed)]
    common = dict(runner=runner, data=data, options=opts, unlabeled=unlabeled, config=config)
    out = lambda g: str(run_dir / g)  # noqa: E731
    t0 = time.perf_counter()
    walls: dict[str, float] = {}

    # transient errors (pod or host not up yet) are retried; invalid data is not
    v = run_gate(gate="validate", out=out("validate"), return_state=True, **common)
    if v.is_failed():
        return decide_flow({"validate": {"status": "failed", "reasons": [str(v.message or "invalid data")]}},
                           {}, artifacts, require_approval, return_state=True)
    results = {"validate": v.result()}
    results["baseline"] = run_gate(gate="baseline", out=out("baseline"), **common)
    base = results["baseline"]["dir"]
    if runner in ("local", "here"):
        # one CPU: concurrent torch processes would only fight over its cores
        results["minirocket"] = run_gate(gate="minirocket", out=out("minirocket"), baseline=base, **common)
        results["pretrain"] = run_gate(gate="pretrain", out=out("pretrain"), **common)
        results["transfer"] = run_gate(gate="transfer", out=out("transfer"), baseline=base,
                                       encoder=results["pretrain"]["dir"], **common)
        results["augment"] = run_gate(gate="augment", out=out("augment"), baseline=base, **common)
    else:
        # remote gates that do not depend on each other run concurrently
        control = run_gate.submit(gate="minirocket", out=out("minirocket"), baseline=base, **common)
        augment = run_gate.submit(gate="augment", out=out("augment"), baseline=base, **common)
        pretrain = run_gate.submit(gate="pretrain", out=out("pretrain"), **common)
        transfer = run_gate.submit(gate="transfer", out=out("transfer"), baseline=base,
                                   encoder=pretrain.result()["dir"], **common)
        for name, fut in (("minirocket", control), ("augment", augment), ("pretrain", pretrain),
                          ("transfer", transfer)):
            results[name] = fut.result()
    for name, r in results.items():
        walls[name] = r["result"]["total_seconds"]
    flow_wall = time.perf_counter() - t0
    return decide_flow({k: r["result"] for k, r in results.items()}, {k: r["dir"] for k, r in results.items()},
                       artifacts, require_approval, timing={"flow_wall_s": flow_wall, "gate_walls_s": walls},
                       return_state=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.gates")
    ap.add_argument("--data", required=True)
    ap.add_argument("--unlabeled")
    ap.add_argument("--runner", default="local")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--config")
    ap.add_argument("--artifacts", default="artifacts")
    args = ap.parse_args(argv)
    state = gates(data=args.data, unlabeled=args.unlabeled, runner=args.runner, preset=args.preset,
                  config=args.config, artifacts=args.artifacts, return_state=True)
    from moola.registry import Registry
    reg = Registry(args.artifacts).read()
    last = None
    jsonl = Path(args.artifacts) / "experiment_results.jsonl"
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
    print("registry: production = " + (f"{p['name']} v{p['version']} ({p['path']})" if p else "none")
          + f"; {len(reg['history'])} change(s) in history")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `gates` flow (deployment `gates/full`): Gate 0 -> 1 -> 2 | 3 -> 4 | 5 -> decide.

    python -m flows.gates --data data/sample/train.parquet --unlabeled data/sample/unlabeled.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from moola_flows.decide import decide_flow, decision_state
from moola_flows.pod import PodJudge, acquire_pod, end_pods, keep_alive, prepare_pods, stop_pod_hook, worker_pods
from moola_flows.report import publish_decision
from moola_flows.tasks import run_gate
from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Failed

from moola.cli.main import stop_on_signals
from moola.core.errors import EXIT_INFRA, EXIT_INVALID, EXIT_OK, DataError, MoolaError
from moola.data.validate import DEFAULT_DATA, load_data_config
from moola.decide.decision import DECISION_FOLDS, Decision, Rule, load_policy
from moola.gates.call import GateCall
from moola.gates.config import DEFAULT_SEED, PresetName, load_gate_config
from moola.gates.graph import BY_NAME, SCHEDULE
from moola.gates.result import GateResult
from moola.pods.fleet import pods_usage
from moola.pods.lease import POD_DEADLINE_S
from moola.pods.spread import MAX_ATTEMPTS, Spread, Unit, spread
from moola.remote.kinds import DEFAULT_RUNNER, ON_THIS_MACHINE, RUNNER_KINDS, RunnerKind, check_runner
from moola.settings import load_settings, registry_from_settings


def check_parameters(runner: str, preset: str, config: str | None, seed: int, policy: dict | None,
                     val_size: float, folds: int):
    """A typo or an impossible value fails at once, before any gate: ConfigError naming the parameter
    (the runner, the preset or config file, the policy field, the data field). Returns the DataConfig."""
    check_runner(runner)
    load_gate_config(preset, config, seed)
    load_policy(policy)
    return load_data_config(val_size=val_size, folds=folds)


@flow(name="gates", flow_run_name="gates-{runner}-{preset}",
      on_failure=[stop_pod_hook], on_crashed=[stop_pod_hook], on_cancellation=[stop_pod_hook])
def gates(data: str, unlabeled: str | None = None, val_size: float = DEFAULT_DATA.val_size,
          folds: int = DECISION_FOLDS, runner: RunnerKind = DEFAULT_RUNNER, preset: PresetName = "default",
          seed: int = DEFAULT_SEED, config: str | None = None, artifacts: str | None = None, require_approval: bool = False,
          approval_timeout_s: int = 3600, pod_deadline_s: int = POD_DEADLINE_S, policy: dict | None = None):
    """Gate 0, gates 1-5 and the decision, on one labelled dataset.

    Args:
        data: Labelled windows (Parquet), on the machine that runs the flow.
        unlabeled: Unlabelled windows for pretraining; without them gates 3-4 are skipped.
        val_size: Validation windows per fold: a count, or a fraction of the labelled windows.
        folds: Walk-forward folds; the decision is made on their pooled validation windows.
        runner: Where the gates run: here (this process), local (subprocesses), ssh (MOOLA_SSH_HOST),
            runpod (the pods the runpod worker made for this run).
        preset: Training preset: default, or seed-smoke (a deliberately broken configuration the gates must refuse).
        seed: Training seed.
        config: A JSON or TOML file of gate config overrides.
        artifacts: Registry root; default MOOLA_ARTIFACTS (environment or .env), else ./artifacts.
        require_approval: A ship waits for a person's answer in the Prefect UI.
        approval_timeout_s: How long a ship waits for that answer; then production stays.
        pod_deadline_s: How long to wait for GPU capacity (runner runpod without the worker).
        policy: Fields of the decision's Policy (its thresholds), e.g. {"f1_margin": 0.02}.
    """
    data_config = check_parameters(runner, preset, config, seed, policy, val_size, folds)
    artifacts = str(registry_from_settings(root=artifacts).root)
    run_dir = Path(artifacts) / "runs" / (time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    base = GateCall(gate="validate", data=Path(data), out=run_dir / "validate",
                    unlabeled=Path(unlabeled) if unlabeled else None, config=Path(config) if config else None,
                    data_config=data_config, preset=preset, seed=seed)
    t0 = time.perf_counter()
    decide_opts = dict(artifacts=artifacts, require_approval=require_approval, approval_timeout_s=approval_timeout_s,
                       data=data, publish=False, policy=policy)

    # Gate 0 first, on this machine when the gates go to a pod: invalid data must not cost a pod.
    # Transient errors (host not up yet) are retried; invalid data is not.
    v = run_gate(base, "local" if runner == "runpod" else runner, return_state=True)
    if v.is_failed():
        exc = v.result(raise_on_failure=False)
        reasons = list(exc.problems) if isinstance(exc, DataError) else [str(v.message or "invalid data")]
        failed = {"validate": {"status": "failed", "reasons": reasons}}
        return outcome(decide_flow(failed, {}, return_state=True, **decide_opts), failed, artifacts, run_dir=run_dir)
    results = {"validate": v.result()}
    handed, leased, ready = worker_pods() if runner == "runpod" else None, [], None
    judge = PodJudge(artifacts, flow_run.id, window_s=load_settings().moola_pod_lost_after_s)
    try:
        if runner == "runpod":
            # the `runpod` worker acquired the pods and stops them when this process exits; without
            # it, one pod for the whole run, stopped in finally (and by the hooks)
            leased = handed or [acquire_pod(artifacts, str(flow_run.id), pod_deadline_s)]
            if not handed and leased[0].get("host_key"):  # a pod it created guards itself: beat for it
                keep_alive(leased[0])
            ready = prepare_pods(leased, judge)
        placed = train_gates(base, run_dir, runner, ready, judge)
        results.update(placed.results)
    finally:
        if runner == "runpod":  # before the decision and any approval pause: pods bill by the second
            end_pods(handed, artifacts, flow_run.id, judge)
    walls = {name: r["result"]["total_seconds"] for name, r in results.items()}
    plain = {k: r["result"] for k, r in results.items()}
    used = pods_record(leased, placed, judge) if leased else None
    return outcome(decide_flow(plain, {k: r["dir"] for k, r in results.items()},
                               timing={"flow_wall_s": time.perf_counter() - t0, "gate_walls_s": walls},
                               pods=used, moves=placed.moves or None, return_state=True, **decide_opts),
                   plain, artifacts, used, placed.moves, run_dir)


def outcome(decided, results: dict, artifacts: str, pods: list[dict] | None = None, moves: list[dict] | None = None,
            run_dir: Path | None = None):
    """The flow ends in the decision's named state (Shipped, Reverted, Investigate, Blocked) with its
    reasons as the message, and the decision artifact is published on this run, not the subflow's."""
    record = decided.result(raise_on_failure=False)
    if not isinstance(record, dict) or "action" not in record:  # decide itself failed (e.g. never settled)
        return Failed(message=decided.message)
    d = Decision(record["action"], record["reasons"], record.get("candidate"),
                 [Rule(**r) for r in record.get("rules") or []], record.get("evidence") or {},
                 record.get("notes") or [])
    publish_decision(d, record.get("production_before"), record.get("production_after"), results,
                     registry_from_settings(root=artifacts).records("decision"), pods, moves, run_dir)
    return decision_state(record)


def train_gates(base: GateCall, run_dir: Path, runner: str, pods: list[dict] | None = None,
                judge: PodJudge | None = None) -> Spread:
    """Gates 1-5, written once: baseline | pretrain, then control, augment, transfer as their
    inputs are ready (moola.pods.spread).

    Where they run: on this machine (here, local) one after another, as concurrent torch processes
    would only fight over its cores; on one ssh host all at once; with pods, one gate per pod at a
    time, spread over every pod, and the gate of a pod lost mid-way moved to a live one. Each gate is
    a Prefect task ("gate X on pod Y", tag "pod:Y"), so the UI shows which pod ran which gate."""
    skip = [g.name for g in SCHEDULE if g.needs_unlabeled and base.unlabeled is None]
    units = [Unit(g.name, tuple(dict.fromkeys(g.inputs.values()))) for g in SCHEDULE if g.name not in skip]
    if pods:
        slots = pods
    else:
        slots = [None] if runner in ON_THIS_MACHINE else [None] * len(units)

    def start(unit: Unit, done: dict, pod: dict | None):
        call = replace(base, gate=unit.name, out=run_dir / unit.name,
                       **{role: Path(done[g]["dir"]) for role, g in BY_NAME[unit.name].inputs.items()})
        # on a pod, a lost connection moves the gate (spread); elsewhere the task's own retries wait it out
        task = run_gate if pod is None else run_gate.with_options(
            task_run_name=f"gate {unit.name} on {pod['pod_id']}", tags=[f"pod:{pod['pod_id']}"], retries=0)
        fut = task.submit(call, runner, pod)
        return fut.wrapped_future, fut.result

    placed = spread(units, slots, start, judge if pods else (lambda slot, exc: None),
                    name=lambda pod: pod["pod_id"] if pod else "here", max_attempts=MAX_ATTEMPTS if pods else 1)
    why = "skipped: no unlabelled data given (the flow's `unlabeled` parameter), so no pretraining"
    for g in skip:  # nothing to pretrain on: gates 3-4 are skipped, the decision still comes
        placed.results[g] = {"dir": None, "result": GateResult.skipped(g, why).model_dump(mode="json")}
    return placed


def pods_record(leased: list[dict], placed: Spread | None, judge: PodJudge) -> list[dict]:
    """Each pod's uptime and cost so far, the gates it ran, and why it was lost (if it was)."""
    out = []
    for p in pods_usage(leased):
        pid = p["pod_id"]
        gone = judge.released.get(pid)
        if gone:  # ended by the run (after the last gate, or lost): its final uptime and cost
            p = {**p, "uptime_s": round(gone["uptime_s"], 1), "cost_usd": round(gone["cost_usd"], 4)}
        out.append({**p, "units": placed.units_on(pid) if placed else [], "lost": judge.lost.get(pid)})
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m flows.gates",
                                 description="Run the gates flow once and print this run's decision.")
    ap.add_argument("--data", required=True, help="labelled windows (Parquet)")
    ap.add_argument("--unlabeled", help="unlabelled windows for pretraining (gates 3-4 are skipped without)")
    ap.add_argument("--runner", choices=RUNNER_KINDS, default=DEFAULT_RUNNER, help="where the gates run")
    ap.add_argument("--val-size", type=float, default=DEFAULT_DATA.val_size,
                    help="validation count (a whole number) or fraction")
    ap.add_argument("--folds", type=int, default=DECISION_FOLDS,
                    help="walk-forward folds; the decision is made on their pooled validation windows")
    ap.add_argument("--preset", default="default", help="default | seed-smoke")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"training seed ({DEFAULT_SEED})")
    ap.add_argument("--config", help="JSON or TOML overrides of the gate config")
    ap.add_argument("--artifacts", help="registry root (default: MOOLA_ARTIFACTS, else ./artifacts)")
    ap.add_argument("--require-approval", action="store_true", help="a ship waits for a person in the Prefect UI")
    ap.add_argument("--approval-timeout-s", type=int, default=3600, help="how long a ship waits for approval")
    ap.add_argument("--pod-deadline-s", type=int, default=POD_DEADLINE_S,
                    help="how long to wait for GPU capacity (runner runpod)")
    ap.add_argument("--policy", type=json.loads, help='decision thresholds as JSON, e.g. \'{"f1_margin": 0.02}\'')
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:  # what the flow would refuse, refused here: one line and exit 2, no flow run, no traceback
        check_parameters(args.runner, args.preset, args.config, args.seed, args.policy, args.val_size, args.folds)
        registry = registry_from_settings(root=args.artifacts)
        decisions_before = len(registry.records("decision"))
    except MoolaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    stop_on_signals()  # SIGTERM/SIGHUP unwind like Ctrl-C: the flow's finally ends its pod
    state = gates(data=args.data, unlabeled=args.unlabeled, val_size=args.val_size, folds=args.folds,
                  runner=args.runner, preset=args.preset, seed=args.seed, config=args.config,
                  artifacts=args.artifacts, require_approval=args.require_approval,
                  approval_timeout_s=args.approval_timeout_s, pod_deadline_s=args.pod_deadline_s,
                  policy=args.policy, return_state=True)
    last = registry.last_decision()
    if last is None or len(registry.records("decision")) == decisions_before:  # an earlier run's is not this one's
        print(f"no decision reached: {state.message}", file=sys.stderr)
        return EXIT_INFRA
    print(f"decision: {last['action'].upper()}" + (f" ({last['candidate']})" if last.get("candidate") else ""))
    for r in last["reasons"]:
        print(f"  - {r}")
    for n in last.get("notes") or []:
        print(f"  note: {n}")
    p = registry.read()["production"]
    print("registry: production = " + (f"{p['name']} v{p['version']} ({registry.folder(p)})" if p else "none")
          + f"; {len(registry.read()['history'])} change(s) in history")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

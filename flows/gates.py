"""The `gates` flow (deployment `gates/full`): Gate 0 -> 1 -> 2 | 3 -> 4 | 5 -> decide.

    python -m flows.gates --data data/sample/train.parquet --unlabeled data/sample/unlabeled.parquet
"""

from __future__ import annotations

import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from moola_flows.decide import decide_flow, decision_state
from moola_flows.params import flow_parser
from moola_flows.pod import RunPods, pods_for_run, stop_pod_hook
from moola_flows.report import publish_decision
from moola_flows.tasks import run_gate
from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Failed

from moola.cli.main import stop_on_signals
from moola.core.errors import EXIT_INFRA, EXIT_INVALID, EXIT_OK, DataError, MoolaError
from moola.data.config import DEFAULT_DATA, load_data_config
from moola.decide.decision import DECISION_FOLDS, Decision, load_policy
from moola.gates.call import GateCall
from moola.gates.config import DEFAULT_SEED, PresetName, load_gate_config
from moola.gates.graph import BY_NAME, NO_UNLABELED, run_plan
from moola.gates.result import GateOutcome, GateResult
from moola.pods.fleet import Pod
from moola.pods.lease import POD_DEADLINE_S
from moola.pods.spread import MAX_ATTEMPTS, Spread, Unit, spread
from moola.registry.store import Pointer
from moola.remote.kinds import DEFAULT_RUNNER, ON_THIS_MACHINE, RunnerKind, check_runner
from moola.settings import registry_from_settings


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
    run = GateCall(gate="validate", data=Path(data), out=new_run_folder(artifacts) / "validate",
                   unlabeled=Path(unlabeled) if unlabeled else None, config=Path(config) if config else None,
                   data_config=data_config, preset=preset, seed=seed)
    decide = Decider(data, artifacts, run.out.parent, require_approval, approval_timeout_s, policy)

    # 1. Check the data (Gate 0), on this machine when the gates go to pods: invalid data costs no pod.
    checked = check_data(run, "local" if runner == "runpod" else runner)
    if checked.result.status != "passed":
        return decide({"validate": checked})
    # 2. Get the pods (runner runpod), 3. train gates 1-5 on them, then end the pods at once:
    #    the decision (and its approval pause) must not keep them billing.
    with pods_for_run(artifacts, flow_run.id, pod_deadline_s) if runner == "runpod" else nullcontext() as pods:
        placed = train_gates(run, runner, pods)
    # 4. Decide: ship a candidate, keep production, investigate, or block.
    return decide({"validate": checked, **placed.results}, pods.record(placed) if pods else None, placed.moves)


def new_run_folder(artifacts: str) -> Path:
    """``<artifacts>/runs/<time>-<random>``: the run's gate folders, one per gate."""
    return Path(artifacts) / "runs" / (time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])


def check_data(call: GateCall, runner: str) -> GateOutcome:
    """Gate 0. Transient errors (a host not up yet) are retried by the task; invalid data is not, and
    comes back as a failed result naming each problem."""
    state = run_gate(call, runner, return_state=True)
    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    reasons = list(exc.problems) if isinstance(exc, DataError) else [str(state.message or "invalid data")]
    return GateOutcome(result=GateResult.refused("validate", reasons))


def train_gates(run: GateCall, runner: str, pods: RunPods | None = None) -> Spread:
    """Gates 1-5, written once: baseline | pretrain, then control, augment, transfer as their
    inputs are ready (moola.pods.spread).

    Where they run: on this machine (here, local) one after another, as concurrent torch processes
    would only fight over its cores; on one ssh host all at once; with pods, one gate per pod at a
    time, spread over every pod, and the gate of a pod lost mid-way moved to a live one. Each gate is
    a Prefect task ("gate X on pod Y", tag "pod:Y"), so the UI shows which pod ran which gate."""
    start_these, skip = run_plan(has_unlabeled=run.unlabeled is not None)
    units = [Unit(g.name, tuple(dict.fromkeys(g.inputs.values()))) for g in start_these]
    if pods:
        slots = pods.ready
    else:
        slots = [None] if runner in ON_THIS_MACHINE else [None] * len(units)

    def start(unit: Unit, done: dict[str, GateOutcome], pod: Pod | None):
        call = replace(run, gate=unit.name, out=run.out.parent / unit.name,
                       **{role: done[g].folder for role, g in BY_NAME[unit.name].inputs.items()})
        # on a pod, a lost connection moves the gate (spread); elsewhere the task's own retries wait it out
        task = run_gate if pod is None else run_gate.with_options(
            task_run_name=f"gate {unit.name} on {pod.pod_id}", tags=[f"pod:{pod.pod_id}"], retries=0)
        fut = task.submit(call, runner, pod)
        return fut.wrapped_future, fut.result

    placed = spread(units, slots, start, pods.judge if pods else (lambda slot, exc: None),
                    name=lambda pod: pod.pod_id if pod else "here", max_attempts=MAX_ATTEMPTS if pods else 1)
    for g in skip:
        placed.results[g.name] = GateOutcome(result=GateResult.skipped(g.name, NO_UNLABELED))
    return placed


@dataclass
class Decider:
    """The `decide` subflow on a run's gates; the run ends in its named state (Shipped, Reverted,
    Investigate, Blocked) with its reasons as the message, and the decision artifact is published
    on this run, not the subflow's."""

    data: str
    artifacts: str
    run_dir: Path
    require_approval: bool
    approval_timeout_s: int
    policy: dict | None
    t0: float = field(default_factory=time.perf_counter)

    def __call__(self, gates: dict[str, GateOutcome], pods: list[dict] | None = None,
                 moves: list[dict] | None = None):
        timing = {"flow_wall_s": time.perf_counter() - self.t0,
                  "gate_walls_s": {name: g.result.total_seconds for name, g in gates.items()}}
        decided = decide_flow(gates, self.artifacts, self.require_approval, self.policy, timing,
                              self.approval_timeout_s, self.data, publish=False, pods=pods, moves=moves or None,
                              return_state=True)
        record = decided.result(raise_on_failure=False)
        if not isinstance(record, dict) or "action" not in record:  # decide itself failed (e.g. never settled)
            return Failed(message=decided.message)
        publish_decision(Decision.from_dict(record), Pointer.parse(record.get("production_before")),
                         Pointer.parse(record.get("production_after")),
                         {k: g.result for k, g in gates.items()},
                         registry_from_settings(root=self.artifacts).records("decision"), pods, moves, self.run_dir)
        return decision_state(record)


def build_parser():
    return flow_parser(gates, "python -m flows.gates", "Run the gates flow once and print this run's decision.")


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
    state = gates(**vars(args), return_state=True)
    last = registry.last_decision()
    if last is None or len(registry.records("decision")) == decisions_before:  # an earlier run's is not this one's
        print(f"no decision reached: {state.message}", file=sys.stderr)
        return EXIT_INFRA
    print(f"decision: {last['action'].upper()}" + (f" ({last['candidate']})" if last.get("candidate") else ""))
    for r in last["reasons"]:
        print(f"  - {r}")
    for n in last.get("notes") or []:
        print(f"  note: {n}")
    p = registry.production()
    print("registry: production = " + (f"{p.label} ({registry.folder(p)})" if p else "none")
          + f"; {len(registry.state().history)} change(s) in history")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

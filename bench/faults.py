"""Soak: runs through the `runpod` worker with one fault each, then RunPod's own view of the bill.

    .venv/bin/python bench/faults.py [--runs 9] [--seed 0]      (make soak; ~10 minutes, not in make test)

What tests/flows/test_worker.py starts (a real `prefect server start`, the deployments, `prefect worker
start --type runpod`, the RunPod emulator: the real `runpod` SDK against its GraphQL API, container-like
pods), then `--runs` runs of `gates/full`, one after another (the deployment runs one at a time), each
with one fault drawn from FAULTS (every fault once per round of len(FAULTS) runs, in a seeded order):

    none          nothing goes wrong
    create-error  RunPod answers the first create with its generic "Something went wrong"
    lost-create   the create is carried out and its answer lost (a 504 page): the pod exists, unnamed to us
    query-error   the next three pod status queries fail ("Something went wrong")
    stop-error    the first terminate fails ("Something went wrong")
    ssh-refused   once the first gate runs, the pod's sshd dies (every session with it)
    ssh-hung      once the first gate runs, the pod's sshd and its sessions are frozen (SIGSTOP)
    crash-pod     once the first gate runs, the pod's machine dies; the API still says RUNNING
    kill-flow     once the first gate runs, the run's process is SIGKILLed
    kill-worker   once the first gate runs, the worker is SIGKILLed and started again 3 s later

Each run has idle_stop_s 60 and max_usd 0.15 ($3.99/h: the budget ends a run after ~135 s). At the end
the bench waits for the pods' watchdogs (idle_stop_s + 60 s at most) and counts, from the emulator's
own records: pods still running, pods still billing, pods created per run (a duplicate is a run with
more pods than it asked for), runs not in a final state. Exit 0 when all of those are zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moola.data.sample import write_sample  # noqa: E402
from tests.fakes.runpod_emulator import SOMETHING_WRONG  # noqa: E402
from tests.flows.conftest import CONFIG, client_call, start_server, stop_server  # noqa: E402
from tests.flows.worker_rig import start_rig  # noqa: E402

FAULTS = ("none", "create-error", "lost-create", "query-error", "stop-error", "ssh-refused", "ssh-hung",
          "crash-pod", "kill-flow", "kill-worker")
IDLE_STOP_S = 60  # the least a pod may be set to (moola_flows.worker.MIN_IDLE_STOP_S)
MAX_USD = 0.15
RUN_TIMEOUT_S = 420


def wait(what: str, check, timeout: float, poll_s: float = 0.3):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = check()
        if got:
            return got
        time.sleep(poll_s)
    raise TimeoutError(what)


def read_run(env, run_id):
    return client_call(env, lambda c: c.read_flow_run(run_id))


def first_gate_running(env, run_id) -> bool:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    tasks = client_call(env, lambda c: c.read_task_runs(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=[run_id]))))
    return any(t.name.startswith("gate baseline on ") and t.state and t.state.is_running() for t in tasks)


def pod_processes(pod, *names: bytes) -> list[int]:
    out = []
    for pid in pod.pids():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if any(cmd.startswith(n) or n in cmd for n in names):
            out.append(pid)
    return out


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def one_run(rig, env, deployment_id, data: Path, art: Path, fault: str) -> dict:
    api = rig.api
    n_ops = len(api.ops)
    if fault == "create-error":
        api.fail_next.append(SOMETHING_WRONG)
    elif fault == "lost-create":
        api.lose_creates = 1
    elif fault == "query-error":
        api.fail_queries.extend([SOMETHING_WRONG] * 3)
    params = {"data": str(data), "unlabeled": None, "config": CONFIG, "artifacts": str(art), "runner": "runpod"}
    run_id = client_call(env, lambda c: c.create_flow_run_from_deployment(
        deployment_id, parameters=params, job_variables={"idle_stop_s": IDLE_STOP_S, "max_usd": MAX_USD})).id
    t0 = time.monotonic()
    note = ""
    if fault == "stop-error":
        # the next mutation after the pod exists is its terminate (heartbeats and gates go over SSH)
        wait("the pod", lambda: [o for o in api.ops[n_ops:] if o.startswith("create")] and api.running(), 240)
        api.fail_next.append(SOMETHING_WRONG)
    elif fault in ("ssh-refused", "ssh-hung", "crash-pod", "kill-flow", "kill-worker"):
        try:
            wait("the first gate", lambda: first_gate_running(env, run_id), 300, poll_s=0.5)
        except TimeoutError:
            note = "first gate never ran: fault not injected"
        else:
            [pod] = [api.pods[p] for p in api.running()]
            if fault == "ssh-refused":
                signal_all(pod_processes(pod, b"/usr/sbin/sshd", b"sshd:", b"[listener]"), signal.SIGKILL)
            elif fault == "ssh-hung":
                signal_all(pod_processes(pod, b"/usr/sbin/sshd", b"sshd:", b"[listener]"), signal.SIGSTOP)
            elif fault == "crash-pod":
                api.crash(pod.id)
            elif fault == "kill-flow":
                pid = read_run(env, run_id).infrastructure_pid.rpartition(":")[2]
                os.kill(int(pid), signal.SIGKILL)
            elif fault == "kill-worker":
                os.kill(rig.worker.pid, signal.SIGKILL)  # the worker alone: its run's process goes on
                rig.worker.wait()
                time.sleep(3)
                rig.start_worker()
    try:
        run = wait("the run to end", lambda: (lambda r: r if r.state.is_final() else None)(read_run(env, run_id)),
                   RUN_TIMEOUT_S - (time.monotonic() - t0), poll_s=1)
    except TimeoutError:
        run = read_run(env, run_id)
    names = [p.name for p in list(api.pods.values()) + list(api.gone.values()) if p.name == f"moola-{run_id}-0"
             or p.name.startswith(f"moola-{run_id}")]
    return {"fault": fault, "state": run.state.type.value, "name": run.state.name, "final": run.state.is_final(),
            "seconds": round(time.monotonic() - t0, 1), "pods": len(names),
            "message": (run.state.message or "")[:110], "note": note}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=len(FAULTS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rng = random.Random(args.seed)
    plan: list[str] = []
    while len(plan) < args.runs:
        round_ = list(FAULTS)
        rng.shuffle(round_)
        plan += round_
    plan = plan[:args.runs]
    root = Path(tempfile.mkdtemp(prefix="moola-faults-"))
    (root / "home").mkdir()
    t_start = time.perf_counter()
    env, server = start_server(root / "home")
    rig, rows = None, []
    try:
        rig = start_rig(root / "rig", env, hide=[root / "data", root / "home"])
        data, _ = write_sample(root / "data")
        deployment = client_call(env, lambda c: c.read_deployment_by_name("gates/full"))
        wait("the worker to poll", lambda: client_call(env, lambda c: c.read_workers_for_work_pool("runpod")), 120)
        for i, fault in enumerate(plan):
            row = one_run(rig, env, deployment.id, data, root / f"art-{i}", fault)
            rows.append(row)
            print(f"{i + 1:>3} {row['fault']:<13} {row['name']:<11} {row['seconds']:>6.1f} s  pods {row['pods']}  "
                  f"{row['message']}{'  [' + row['note'] + ']' if row['note'] else ''}", flush=True)
        # what the watchdogs still have to end (a pod whose heartbeats stopped ends within idle_stop_s)
        try:
            wait("every pod to end", lambda: not rig.api.running() and not rig.api.billing(), IDLE_STOP_S + 60, 1)
        except TimeoutError:
            pass
        api = rig.api
        running, billing = list(api.running()), list(api.billing())
        by_who = Counter(by for o, by in zip(api.ops, api.by) if o.startswith("terminate"))
    finally:
        if rig is not None:
            rig.stop()
        stop_server(server)
    dup = [r for r in rows if r["pods"] > 1]
    not_final = [r for r in rows if not r["final"]]
    print(f"\nruns {len(rows)} ({time.perf_counter() - t_start:.0f} s in all, seed {args.seed}); end states: "
          + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["name"] for r in rows).items())))
    print(f"pods created {sum(r['pods'] for r in rows)}; terminated by moola (account key) {by_who['account']}, "
          f"by their own watchdog {sum(v for k, v in by_who.items() if k != 'account')}")
    print(f"pods still running: {len(running)} {running}")
    print(f"pods still billing: {len(billing)} {billing}")
    print(f"runs with a duplicate pod: {len(dup)} {[r['fault'] for r in dup]}")
    print(f"runs not in a final state: {len(not_final)} {[r['fault'] for r in not_final]}")
    return 0 if not (running or billing or dup or not_final) else 1


if __name__ == "__main__":
    sys.exit(main())

"""From "run scheduled" to "first gate starts" through the `runpod` worker, on an emulated pod.

    .venv/bin/python bench/pod.py [--boot-polls 0]

Starts what tests/flows/test_worker.py starts (a real `prefect server start`, the deployments,
`prefect worker start --type runpod`, the RunPod emulator: its API for the real SDK and container-
like pods whose Python lacks pydantic, safetensors and scikit-base, installed from a local
wheelhouse), then runs `gates/full` twice. Each run gets a fresh pod with no volume (the default),
so both install the environment (cold); each is cancelled once its first remote gate started.

Times come from the Prefect API (run created, log lines of the worker, task run start and end):
    pickup      run created (scheduled to start now) -> the worker starts acquiring (the worker
                polls every second here: PREFECT_WORKER_QUERY_SECONDS=1; its default is 10)
    acquire     the RunPod API calls until the API shows the SSH port (here no boot: a real pod takes minutes)
    guard       until the pod's watchdog is verified over SSH (its sshd answers, its status read)
    start       pods acquired -> the flow's process runs (pull step, Python and Prefect start-up)
    gate 0      Gate 0 on this machine (invalid data never costs a pod)
    env         "make pod ... ready": probe, install what the image lacks, probe again
    to gate     env ready -> the first remote gate task starts
    total       run created -> first remote gate starts
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moola.data.sample import write_sample  # noqa: E402
from tests.flows.conftest import CONFIG, client_call, start_server, stop_server  # noqa: E402
from tests.flows.worker_rig import start_rig  # noqa: E402


def wait(what: str, check, timeout: float = 300):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def run_once(env, deployment_id, data: Path, art: Path) -> dict:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.states import Cancelling
    params = {"data": str(data), "unlabeled": None, "config": CONFIG, "artifacts": str(art), "runner": "runpod"}
    run_id = client_call(env, lambda c: c.create_flow_run_from_deployment(
        deployment_id, parameters=params, job_variables={"idle_stop_s": 60})).id
    def first_gate():
        found = client_call(env, lambda c: c.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[run_id]))))
        return found if any(t.name.startswith("gate baseline") and t.start_time for t in found) else None
    tasks = wait("the first gate to start", first_gate, 600)
    first = [t for t in tasks if t.name.startswith("gate baseline")]
    client_call(env, lambda c: c.set_flow_run_state(run_id, Cancelling(), force=True))
    run = client_call(env, lambda c: c.read_flow_run(run_id))
    # the run's log lines reach the API in batches: wait for the pod-ready line
    logs = wait("the run's logs", lambda: (lambda xs: xs if any("environment" in x.message for x in xs) else None)(
        client_call(env, lambda c: c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))))))
    # the deployment allows one run at a time: the next run starts once this one is over
    wait("the cancelled run to end", lambda: client_call(env, lambda c: c.read_flow_run(run_id)).state.is_final())
    by_name = {t.name: t for t in tasks}

    def log_at(prefix: str) -> float:
        return next(x.timestamp.timestamp() for x in logs if x.message.startswith(prefix))

    ready = next(t for n, t in by_name.items() if n.startswith("make pod"))
    created, acq0, acq1 = run.created.timestamp(), log_at("acquiring "), log_at("pod 1/1:")
    guarded = next(x.timestamp.timestamp() for x in logs if " guarded: " in x.message)
    return {"pickup": acq0 - created, "acquire": acq1 - acq0, "guard": guarded - acq1,
            "start": run.start_time.timestamp() - guarded,
            "gate 0": by_name["gate validate"].end_time.timestamp() - by_name["gate validate"].start_time.timestamp(),
            "env": ready.end_time.timestamp() - ready.start_time.timestamp(),
            "to gate": first[0].start_time.timestamp() - ready.end_time.timestamp(),
            "total": first[0].start_time.timestamp() - created,
            "env warm": any("environment warm" in x.message for x in logs)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boot-polls", type=int, default=0, help="status polls (5 s apart) before the fake pod's "
                    "SSH port shows: a stand-in for a real pod's boot")
    args = ap.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="moola-pod-bench-"))
    t0 = time.perf_counter()
    (root / "home").mkdir()
    env, server = start_server(root / "home")
    rig = None
    try:
        rig = start_rig(root / "rig", env, hide=[root / "data", root / "home"], boot_polls=args.boot_polls)
        data, _ = write_sample(root / "data")
        deployment = client_call(env, lambda c: c.read_deployment_by_name("gates/full"))
        wait("the worker to poll", lambda: client_call(env, lambda c: c.read_workers_for_work_pool("runpod")), 120)
        time.sleep(2)
        print(f"set-up (server, deployments, worker, image, wheelhouse): {time.perf_counter() - t0:.1f} s")
        rows = {}
        for label in ("run 1", "run 2"):
            rows[label] = run_once(env, deployment.id, data, root / f"art-{label[-1]}")
            assert not rows[label]["env warm"], rows[label]  # a fresh pod: nothing installed yet
    finally:
        if rig is not None:
            rig.stop()
        stop_server(server)
    print(f"\n{'seconds':<10}" + "".join(f"{k:>9}" for k in rows))
    for k in ("pickup", "acquire", "guard", "start", "gate 0", "env", "to gate", "total"):
        print(f"{k:<10}" + "".join(f"{rows[r][k]:>9.1f}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

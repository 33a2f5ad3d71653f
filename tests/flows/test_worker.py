"""The `runpod` worker type as a user runs it: `prefect worker start --pool runpod --type runpod`
against a real Prefect server, the RunPod API faked over HTTP (the real `runpod` SDK talks to it),
and a real loopback sshd as the pod. The pod's Python lacks pydantic (and pydantic-core,
annotated-types, typing-inspection), safetensors and scikit-base (so `import sktime` fails there too),
as a fresh RunPod image does; the flow installs them from a local wheelhouse.

One worker serves every test of this module; each test starts a run of the deployment `gates/full`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.flows.conftest import CONFIG, client_call, jsonl
from tests.flows.worker_rig import KEY, start_rig
from tests.remote.sshd_server import descendants


@pytest.fixture(scope="module")
def rig(server, tmp_path_factory, sample_dir):
    r = start_rig(tmp_path_factory.mktemp("worker"), server, pods=2)
    deployment = client_call(server, lambda c: c.read_deployment_by_name("gates/full"))
    yield dict(server=server, api=r.api, sshd=r.sshd, sshds=r.sshds, root=r.root, worker=r.worker, log=r.log,
               deployment=deployment, data=str(sample_dir / "train.parquet"))
    r.stop()


def start(rig, art, **job_variables):
    # no unlabelled data: gates 3-4 are skipped, which keeps these runs short
    params = {"data": rig["data"], "unlabeled": None, "config": CONFIG, "artifacts": str(art), "runner": "runpod"}
    return client_call(rig["server"], lambda c: c.create_flow_run_from_deployment(
        rig["deployment"].id, parameters=params, job_variables=job_variables or None)).id


def wait_for(rig, check, timeout, what, poll_s=0.5):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = check()
        if got:
            return got
        if rig["worker"].poll() is not None:
            pytest.fail(f"the worker exited:\n{rig['log'].read_text()[-3000:]}")
        time.sleep(poll_s)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{rig['log'].read_text()[-4000:]}")


def final(rig, run_id, timeout=300):
    def done():
        r = client_call(rig["server"], lambda c: c.read_flow_run(run_id))
        return r if r.state.is_final() else None
    return wait_for(rig, done, timeout, f"flow run {run_id} to end")


def gate_running(rig, run_id, gate="baseline"):
    """The flow run once its gate task runs on the pod."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def running():
        tasks = client_call(rig["server"], lambda c: c.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))))
        if any(t.name.startswith(f"gate {gate} on ") and t.state and t.state.is_running() for t in tasks):
            return client_call(rig["server"], lambda c: c.read_flow_run(run_id))
    return wait_for(rig, running, 240, f"gate {gate} to run")


def pod_of(rig, before: int) -> str:
    """The id of the pod created after the first ``before`` operations."""
    created = [o for o in rig["api"].ops[before:] if o.startswith("create") and o.endswith("H200")]
    assert len(created) == 1, rig["api"].ops[before:]
    return f"pod{len([o for o in rig['api'].ops if o == 'create NVIDIA H200'])}"


def leases(rig) -> list:
    return list((rig["root"] / "worker-art" / "pods" / "worker").glob("*.json"))


def test_a_deployment_run_gets_its_pods_from_the_worker_and_they_stop_last(rig, tmp_path):
    api, remote = rig["api"], rig["root"] / "remote"
    n0 = len(api.ops)
    run = final(rig, start(rig, tmp_path / "art", idle_stop_s=20))
    # the deployment's GPU types in order: no capacity for the H100, the H200 is used
    assert api.ops[n0:n0 + 2] == ["create NVIDIA H100 80GB HBM3", "create NVIDIA H200"]
    pod = pod_of(rig, n0)
    decision = [x for x in jsonl(tmp_path / "art") if x["kind"] == "decision"][-1]
    assert run.state.is_completed() == (decision["decision"]["action"] in ("ship", "revert")), run.state.message
    assert {x["gate"] for x in jsonl(tmp_path / "art") if x["kind"] == "gate_result"} == {
        "validate", "baseline", "minirocket", "augment", "pretrain", "transfer"}
    assert len(list((remote / "runs").iterdir())) == 3  # baseline, minirocket, augment ran on the pod
    # stopped once, last: when the run's process exited, after the run's end, with nothing left leased
    wait_for(rig, lambda: api.when(f"stop {pod}") and not leases(rig), 30, f"{pod} to stop")
    assert api.ops[n0:].count(f"stop {pod}") == 1 and api.pods[pod]["desiredStatus"] == "EXITED"
    assert api.when(f"stop {pod}") >= run.end_time.timestamp() - 1
    # the pod was made ready by the run: the missing packages installed from the wheelhouse, probed
    ready = list(remote.glob("env/*/READY"))
    assert len(ready) == 1 and {"pydantic==2.14.4", "scikit-base==1.1.1", "safetensors==0.8.0"} <= set(
        json.loads(ready[0].read_text())["installed"])
    # its watchdog was started on the pod with the run's idle_stop_s, and heard from
    assert "stops itself after 20 s" in (remote / "heartbeat" / f"{pod}.log").read_text()
    # the pod in the decision record (uptime so far) and in the worker's record (final figures)
    assert [p["pod_id"] for p in decision["pods"]] == [pod] and decision["pods"][0]["gpu_type"] == "NVIDIA H200"
    usage = [x for x in jsonl(tmp_path / "art") if x["kind"] == "pods"][-1]
    assert usage["flow_run_id"] == str(run.id) and usage["pods"][0]["pod_id"] == pod
    assert usage["pods"][0]["stopped"] and usage["pods"][0]["uptime_s"] >= decision["pods"][0]["uptime_s"] > 0
    assert usage["cost_usd"] == pytest.approx(3.99 * usage["pods"][0]["uptime_s"] / 3600, rel=1e-3)
    assert KEY not in rig["log"].read_text()
    # ... and in the decision artifact the run publishes
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    art = client_call(rig["server"], lambda c: c.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]), key=ArtifactFilterKey(any_=["decision"]))))
    assert len(art) == 1 and f"| {pod} | NVIDIA H200 |" in art[0].data and "$3.99/h" in art[0].data
    # the pod's own log lines are in the gate tasks' logs, each in its own task
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    logs = client_call(rig["server"], lambda c: c.read_logs(log_filter=LogFilter(
        flow_run_id=LogFilterFlowRunId(any_=[run.id]))))
    names = {t.id: t.name for t in client_call(rig["server"], lambda c: c.read_task_runs())}
    remote_lines = [(names.get(x.task_run_id), x.message) for x in logs if "@127.0.0.1]" in x.message]
    # each gate task is named after the pod it ran on (what the UI shows)
    assert {n for n, _ in remote_lines} == {f"gate {g} on {pod}" for g in ("baseline", "minirocket", "augment")}
    assert all(m.startswith(f"[{n.split()[1]}@127.0.0.1]") for n, m in remote_lines)
    assert any(n == "make pod pod1 ready".replace("pod1", pod) for n in names.values())


def task_runs(rig, run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    return client_call(rig["server"], lambda c: c.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))))


def test_two_pods_share_the_gates_and_a_pod_lost_mid_gate_hands_its_gate_to_the_other(rig, tmp_path):
    """pods: 2. Baseline first; then minirocket and augment at once, one per pod. The sshd of the
    pod running augment is killed (listener, sessions, the gate's process: the pod is gone) while it
    runs: the run judges that pod lost, stops it, and augment runs again on the other pod."""
    api, art = rig["api"], tmp_path / "art"
    run_id = start(rig, art, pods=2, idle_stop_s=20)

    def augment_on_a_pod():  # the gate's own process, seen under the sshd of the pod that runs it
        for sshd in rig["sshds"]:
            for pid in descendants(sshd.proc.pid):
                try:
                    if b"gate\0run\0augment" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return sshd
                except OSError:
                    continue
    sshd = wait_for(rig, augment_on_a_pod, 240, "gate augment to run on a pod", poll_s=0.1)
    up = [p for p in api.pods if api.pods[p]["desiredStatus"] == "RUNNING"]  # this run's two pods
    victim = next(p for p in up if api.port_of[p] == sshd.port)
    other = next(p for p in up if p != victim)
    sshd.stop()
    # everything on that pod goes with it, its watchdog too (setsid: no longer below sshd); left
    # running it would stop the pod a second time once the heartbeats stop, which a gone pod cannot
    subprocess.run(["pkill", "-f", f"moola.remote.watchdog --heartbeat [^ ]*/heartbeat/{victim} "], check=False)
    try:
        run = final(rig, run_id)
    finally:
        sshd.start()  # the module's later runs may get this port again
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]
    assert run.state.name in ("Shipped", "Reverted", "Investigate", "Blocked"), run.state.message
    assert {x["gate"] for x in jsonl(art) if x["kind"] == "gate_result"} >= {"validate", "baseline", "minirocket",
                                                                              "augment"}
    # the record says which gate moved, from where to where, and why
    assert [(m["unit"], m["from"], m["to"]) for m in decision["moves"]] == [("augment", victim, other)]
    assert decision["moves"][0]["why"].startswith("ssh unreachable 3 times")
    pods = {p["pod_id"]: p for p in decision["pods"]}
    assert set(pods) == {victim, other}
    assert pods[victim]["lost"].startswith("ssh unreachable") and pods[other]["lost"] is None
    assert pods[victim]["units"] == ["baseline"] and pods[other]["units"] == ["minirocket", "augment"]
    # what the UI shows: each gate task named after its pod; the lost try failed, the moved one completed
    gate_tasks = [t for t in task_runs(rig, run_id) if t.name.startswith("gate ")]
    states = {t.name: t.state.type.value for t in gate_tasks}
    assert all(t.tags == [f"pod:{t.name.split(' on ')[1]}"] for t in gate_tasks if " on " in t.name)
    assert states[f"gate augment on {victim}"] == "FAILED" and states[f"gate augment on {other}"] == "COMPLETED"
    assert states[f"gate baseline on {victim}"] == "COMPLETED" and states[f"gate minirocket on {other}"] == "COMPLETED"
    # every pod stopped, each once: the lost one by the run as soon as it was judged lost (before the
    # decision), the other by the worker when the run's process exited
    wait_for(rig, lambda: not leases(rig) and api.when(f"stop {other}"), 30, "both pods to stop")
    assert api.ops.count(f"stop {victim}") == 1 and api.ops.count(f"stop {other}") == 1
    assert api.when(f"stop {victim}") < run.end_time.timestamp() <= api.when(f"stop {other}") + 1
    assert {api.pods[p]["desiredStatus"] for p in (victim, other)} == {"EXITED"}
    # the worker's own record has both pods' final figures, the lost one as the run stopped it
    usage = [x for x in jsonl(art) if x["kind"] == "pods"][-1]
    assert {(p["pod_id"], p.get("released_by")) for p in usage["pods"]} == {(victim, "run"), (other, None)}
    assert usage["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in usage["pods"]), abs=1e-5)


def test_sigkill_of_the_flow_process_mid_gate_stops_the_pod_within_seconds(rig, tmp_path):
    n0 = len(rig["api"].ops)
    # the first test of this module installed the pod environment (cold); this run must find it warm
    ready_before = [p.stat().st_mtime for p in (rig["root"] / "remote").glob("env/*/READY")]
    run = gate_running(rig, start(rig, tmp_path / "art", idle_stop_s=20))
    pod = pod_of(rig, n0)
    assert rig["api"].pods[pod]["desiredStatus"] == "RUNNING"
    host, _, pid = run.infrastructure_pid.rpartition(":")
    t_kill = time.time()
    os.kill(int(pid), signal.SIGKILL)
    wait_for(rig, lambda: rig["api"].when(f"stop {pod}") and not leases(rig), 30, f"{pod} to stop")
    assert rig["api"].when(f"stop {pod}") - t_kill < 10
    assert final(rig, run.id).state.is_crashed()
    # this second pod of the session found the environment the first run installed (a resumed pod
    # keeps /workspace; here both "pods" share the loopback's disk): warm, nothing installed again
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    tasks = client_call(rig["server"], lambda c: c.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))))
    assert [t.state.is_completed() for t in tasks if t.name == f"make pod {pod} ready"] == [True]
    assert len(ready_before) == 1
    assert [p.stat().st_mtime for p in (rig["root"] / "remote").glob("env/*/READY")] == ready_before


def test_no_capacity_until_the_deadline_fails_the_run_with_no_pod(rig, tmp_path):
    pods_before, n0 = len(rig["api"].pods), len(rig["api"].ops)
    t0 = time.monotonic()
    run = final(rig, start(rig, tmp_path / "art", gpu_types=["NVIDIA A100 80GB PCIe"], pod_deadline_s=4))
    assert run.state.is_failed() and run.state.message.startswith("no pods: ")
    assert "no capacity for any of NVIDIA A100 80GB PCIe" in run.state.message
    assert time.monotonic() - t0 < 60
    assert len(rig["api"].pods) == pods_before
    assert {o for o in rig["api"].ops[n0:] if o.startswith("create")} == {"create NVIDIA A100 80GB PCIe"}
    assert not jsonl(tmp_path / "art")  # the flow never started: nothing recorded, nothing decided


def test_crossing_the_budget_stops_the_pods_and_fails_the_run_with_the_figure(rig, tmp_path):
    n0 = len(rig["api"].ops)
    run = final(rig, start(rig, tmp_path / "art", max_usd=0.002, idle_stop_s=20))  # $3.99/h: ~2 s
    pod = pod_of(rig, n0)
    assert run.state.is_failed() and run.state.message.startswith("budget: $0.00")
    assert "passed max_usd $0.0020" in run.state.message
    wait_for(rig, lambda: not leases(rig), 30, "the lease records to go")
    assert rig["api"].pods[pod]["desiredStatus"] == "EXITED"
    usage = [x for x in jsonl(tmp_path / "art") if x["kind"] == "pods"][-1]
    assert usage["budget_stop"] == run.state.message and usage["cost_usd"] > 0.002


def test_cancelling_from_the_ui_stops_the_pod(rig, tmp_path):
    """Last of the module's runs: the cancelled process takes up to ~30 s to stop, and the
    deployment's concurrency limit of 1 would make a next run wait for it."""
    from prefect.states import Cancelling
    n0 = len(rig["api"].ops)
    run = gate_running(rig, start(rig, tmp_path / "art", idle_stop_s=20))
    pod = pod_of(rig, n0)
    t_cancel = time.time()
    client_call(rig["server"], lambda c: c.set_flow_run_state(run.id, Cancelling(), force=True))
    wait_for(rig, lambda: rig["api"].when(f"stop {pod}") and not leases(rig), 60, f"{pod} to stop")
    assert rig["api"].when(f"stop {pod}") - t_cancel < 10
    # the pods did not wait for the process, which Prefect's runner stops (or the worker, 15 s later,
    # if the runner missed the cancellation; not waited for here: the suite's time is short)
    state = client_call(rig["server"], lambda c: c.read_flow_run(run.id)).state
    assert state.is_cancelling() or state.is_cancelled(), state


def test_a_restarted_worker_stops_the_pods_of_runs_that_ended_without_it(server, tmp_path, monkeypatch):
    """The worker that leased them died (SIGKILL, reboot): its successor stops the pods of runs that
    are over or gone, and leaves those of a run still going to their watchdog. This worker has no
    RUNPOD_API_KEY: it reads the key from the Prefect Secret block `runpod-api-key`."""
    import asyncio
    import uuid

    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Running

    from flows.worker import RunPodWorker, leases_dir
    from moola.atomic import write_json_atomic
    from moola.settings import load_settings
    from tests.remote.fake_runpod_http import FakeRunPodHTTP

    api = FakeRunPodHTTP(api_key=KEY)
    for pod in ("podgone", "podlive"):
        api.pods[pod] = {"id": pod, "desiredStatus": "RUNNING", "costPerHr": 3.99, "runtime": None}
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(tmp_path / "art"))
    live = client_call(server, lambda c: c.read_deployment_by_name("gates/full"))
    live_run = client_call(server, lambda c: c.create_flow_run_from_deployment(live.id, parameters={
        "data": "x", "runner": "local"}))
    client_call(server, lambda c: c.set_flow_run_state(live_run.id, Running(), force=True))
    records = leases_dir(load_settings())
    records.mkdir(parents=True)
    for pod, run_id in (("podgone", str(uuid.uuid4())), ("podlive", str(live_run.id))):
        write_json_atomic(records / f"{run_id}.0.json", {"pod_id": pod, "started_wall": time.time() - 60,
                                                          "cost_per_hr": 3.99, "run_id": run_id})

    async def start_and_stop():
        async with RunPodWorker(work_pool_name="runpod"):
            pass
    from prefect.blocks.system import Secret
    try:
        with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
            Secret(value=KEY).save("runpod-api-key", overwrite=True)
            asyncio.run(start_and_stop())
    finally:
        api.close()
        client_call(server, lambda c: c.delete_flow_run(live_run.id))
    assert api.ops == ["stop podgone"] and api.pods["podlive"]["desiredStatus"] == "RUNNING"
    assert [p.name for p in records.glob("*.json")] == [f"{live_run.id}.0.json"]

"""The `runpod` worker type as a user runs it: `prefect worker start --pool runpod --type runpod`
against a real Prefect server, the RunPod API faked over HTTP (the real `runpod` SDK talks to it),
and a real loopback sshd as the pod. The pod's Python lacks sktime, pydantic, numba and
safetensors, as a fresh RunPod image does; the flow installs them from a local wheelhouse.

One worker serves every test of this module; each test starts a run of the deployment `gates/full`.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import time

import pytest

from tests.flows.conftest import CONFIG, PREFECT, ROOT, client_call, deploy, jsonl
from tests.remote.fake_runpod_http import FakeRunPodHTTP
from tests.remote.pod_image import make_image_python, make_wheelhouse
from tests.remote.sshd_server import make_sshd

KEY = "rp_worker_test_key"


@pytest.fixture(scope="module")
def rig(server, tmp_path_factory, sample_dir):
    root = tmp_path_factory.mktemp("worker")
    api = FakeRunPodHTTP(api_key=KEY, ssh_port=0, boot_polls=0)
    # the pod's sessions see what RunPod sets in a pod: its API key (and, here, the fake's address)
    (root / "sshd").mkdir()
    sshd = make_sshd(root / "sshd", env={"RUNPOD_API_KEY": KEY, "RUNPOD_API_BASE_URL": api.url})
    api.ssh_port = sshd.port
    sshd.start()
    env = dict(server, RUNPOD_API_KEY=KEY, RUNPOD_API_BASE_URL=api.url, MOOLA_SSH_USER=getpass.getuser(),
               MOOLA_SSH_KEY=str(sshd.client_key), MOOLA_SSH_KNOWN_HOSTS=str(sshd.known_hosts),
               MOOLA_REMOTE_WORKDIR=str(root / "remote"), MOOLA_REMOTE_PYTHON=str(make_image_python(root / "img")),
               MOOLA_POD_WHEELHOUSE=str(make_wheelhouse(root / "wheelhouse")), MOOLA_SSH_TIMEOUT="3",
               MOOLA_ARTIFACTS=str(root / "worker-art"), PREFECT_WORKER_QUERY_SECONDS="1")
    deploy(server)
    log = open(root / "worker.log", "w")
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "runpod", "--type", "runpod", "--name", "w1"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deployment = client_call(server, lambda c: c.read_deployment_by_name("gates/full"))
    rig = dict(server=server, api=api, sshd=sshd, root=root, worker=worker, log=root / "worker.log",
               deployment=deployment, data=str(sample_dir / "train.parquet"))
    yield rig
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
    log.close()
    subprocess.run(["pkill", "-f", f"moola.remote.watchdog --heartbeat {root}"], check=False)
    sshd.stop()
    api.close()


def start(rig, art, **job_variables):
    # no unlabelled data: gates 3-4 are skipped, which keeps these runs short
    params = {"data": rig["data"], "unlabeled": None, "config": CONFIG, "artifacts": str(art), "runner": "runpod"}
    return client_call(rig["server"], lambda c: c.create_flow_run_from_deployment(
        rig["deployment"].id, parameters=params, job_variables=job_variables or None)).id


def wait_for(rig, check, timeout, what):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = check()
        if got:
            return got
        if rig["worker"].poll() is not None:
            pytest.fail(f"the worker exited:\n{rig['log'].read_text()[-3000:]}")
        time.sleep(0.5)
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
        if any(t.name == f"gate {gate}" and t.state and t.state.is_running() for t in tasks):
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
    wait_for(rig, lambda: api.when(f"stop {pod}"), 30, f"{pod} to stop")
    assert api.ops[n0:].count(f"stop {pod}") == 1 and api.pods[pod]["desiredStatus"] == "EXITED"
    assert api.when(f"stop {pod}") >= run.end_time.timestamp() - 1 and not leases(rig)
    # the pod was made ready by the run: the missing packages installed from the wheelhouse, probed
    ready = list(remote.glob("env/*/READY"))
    assert len(ready) == 1 and "sktime==1.2.0" in json.loads(ready[0].read_text())["installed"]
    # its watchdog was started on the pod with the run's idle_stop_s, and heard from
    assert "stops itself after 20 s" in (remote / "heartbeat" / f"{pod}.log").read_text()
    # the pod in the decision record (uptime so far) and in the worker's record (final figures)
    assert [p["pod_id"] for p in decision["pods"]] == [pod] and decision["pods"][0]["gpu_type"] == "NVIDIA H200"
    usage = [x for x in jsonl(tmp_path / "art") if x["kind"] == "pods"][-1]
    assert usage["flow_run_id"] == str(run.id) and usage["pods"][0]["pod_id"] == pod
    assert usage["pods"][0]["stopped"] and usage["pods"][0]["uptime_s"] >= decision["pods"][0]["uptime_s"] > 0
    assert usage["cost_usd"] == pytest.approx(3.99 * usage["pods"][0]["uptime_s"] / 3600, rel=1e-3)
    assert KEY not in rig["log"].read_text()
    # the pod's own log lines are in the gate tasks' logs, each in its own task
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    logs = client_call(rig["server"], lambda c: c.read_logs(log_filter=LogFilter(
        flow_run_id=LogFilterFlowRunId(any_=[run.id]))))
    names = {t.id: t.name for t in client_call(rig["server"], lambda c: c.read_task_runs())}
    remote_lines = [(names.get(x.task_run_id), x.message) for x in logs if "@127.0.0.1]" in x.message]
    assert {n for n, _ in remote_lines} == {f"gate {g}" for g in ("baseline", "minirocket", "augment")}
    assert all(m.startswith(f"[{n.split()[1]}@127.0.0.1]") for n, m in remote_lines)
    assert any(n == "make pod pod1 ready".replace("pod1", pod) for n in names.values())


def test_sigkill_of_the_flow_process_mid_gate_stops_the_pod_within_seconds(rig, tmp_path):
    n0 = len(rig["api"].ops)
    run = gate_running(rig, start(rig, tmp_path / "art", idle_stop_s=20))
    pod = pod_of(rig, n0)
    assert rig["api"].pods[pod]["desiredStatus"] == "RUNNING"
    host, _, pid = run.infrastructure_pid.rpartition(":")
    t_kill = time.time()
    os.kill(int(pid), signal.SIGKILL)
    wait_for(rig, lambda: rig["api"].when(f"stop {pod}"), 30, f"{pod} to stop")
    assert rig["api"].when(f"stop {pod}") - t_kill < 10
    assert final(rig, run.id).state.is_crashed() and not leases(rig)


def test_cancelling_from_the_ui_stops_the_pod(rig, tmp_path):
    from prefect.states import Cancelling
    n0 = len(rig["api"].ops)
    run = gate_running(rig, start(rig, tmp_path / "art", idle_stop_s=20))
    pod = pod_of(rig, n0)
    t_cancel = time.time()
    client_call(rig["server"], lambda c: c.set_flow_run_state(run.id, Cancelling(), force=True))
    wait_for(rig, lambda: rig["api"].when(f"stop {pod}"), 60, f"{pod} to stop")
    assert rig["api"].when(f"stop {pod}") - t_cancel < 10 and not leases(rig)
    # the process is Prefect's to stop (it ends the run Cancelled); the pods did not wait for it
    state = client_call(rig["server"], lambda c: c.read_flow_run(run.id)).state
    assert state.is_cancelling() or state.is_cancelled(), state


def test_crossing_the_budget_stops_the_pods_and_fails_the_run_with_the_figure(rig, tmp_path):
    n0 = len(rig["api"].ops)
    run = final(rig, start(rig, tmp_path / "art", max_usd=0.002, idle_stop_s=20))  # $3.99/h: ~2 s
    pod = pod_of(rig, n0)
    assert run.state.is_failed() and run.state.message.startswith("budget: $0.00")
    assert "passed max_usd $0.0020" in run.state.message
    assert rig["api"].pods[pod]["desiredStatus"] == "EXITED" and not leases(rig)
    usage = [x for x in jsonl(tmp_path / "art") if x["kind"] == "pods"][-1]
    assert usage["budget_stop"] == run.state.message and usage["cost_usd"] > 0.002


def test_no_capacity_until_the_deadline_fails_the_run_with_no_pod(rig, tmp_path):
    pods_before, n0 = len(rig["api"].pods), len(rig["api"].ops)
    t0 = time.monotonic()
    run = final(rig, start(rig, tmp_path / "art", gpu_types=["NVIDIA A100 80GB PCIe"], pod_deadline_s=4))
    assert run.state.is_failed() and run.state.message.startswith("no pods: ")
    assert "no capacity for any of NVIDIA A100 80GB PCIe" in run.state.message
    assert time.monotonic() - t0 < 60
    assert len(rig["api"].pods) == pods_before and set(rig["api"].ops[n0:]) == {"create NVIDIA A100 80GB PCIe"}
    assert not jsonl(tmp_path / "art")  # the flow never started: nothing recorded, nothing decided

"""The `runpod` worker type as a user runs it: `prefect worker start --pool runpod --type runpod`
against a real Prefect server, with RunPod emulated (tests/fakes/runpod_emulator.py): the real
`runpod` SDK talks to its GraphQL API, and each pod is a container-like process tree with its own
disk, /etc/ssh and PID 1, behaving as RunPod's images do (host keys made at every start, sshd only
with PUBLIC_KEY, RUNPOD_* invisible to SSH sessions, dockerArgs replacing the image's command).
The pod's Python lacks pydantic (and pydantic-core, annotated-types, typing-inspection), safetensors
and scikit-base (so `import sktime` fails there too), as a fresh RunPod image does; the run installs
them from a local wheelhouse. The test configures no known_hosts and no fingerprint.

One worker serves every test of this module; each test starts a run of the deployment `gates/full`.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from moola.pods.boot import START_COMMAND, public_from_private
from tests.fakes.sshd_server import make_sshd
from tests.flows.conftest import CONFIG, assert_expected_decision, client_call, deploy, jsonl
from tests.flows.worker_rig import KEY, start_rig


@pytest.fixture(scope="module")
def rig(server, tmp_path_factory, sample_dir):
    r = start_rig(tmp_path_factory.mktemp("worker"), server, hide=[tmp_path_factory.getbasetemp()])
    deployment = client_call(server, lambda c: c.read_deployment_by_name("gates/full"))
    yield dict(server=server, api=r.api, root=r.root, rig=r, log=r.log, deployment=deployment,
               data=str(sample_dir / "train.parquet"))
    r.stop()


def start(rig, art, data=None, **job_variables):
    # no unlabelled data: gates 3-4 are skipped, which keeps these runs short
    params = {"data": data or rig["data"], "unlabeled": None, "config": CONFIG, "artifacts": str(art),
              "runner": "runpod"}
    return client_call(rig["server"], lambda c: c.create_flow_run_from_deployment(
        rig["deployment"].id, parameters=params, job_variables=job_variables or None)).id


def wait_for(rig, check, timeout, what, poll_s=0.5, worker_may_exit=False):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = check()
        if got:
            return got
        if not worker_may_exit and rig["rig"].worker.poll() is not None:
            pytest.fail(f"the worker exited:\n{rig['log'].read_text()[-3000:]}")
        time.sleep(poll_s)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{rig['log'].read_text()[-4000:]}")


def final(rig, run_id, timeout=300):
    def done():
        r = client_call(rig["server"], lambda c: c.read_flow_run(run_id))
        return r if r.state.is_final() else None
    return wait_for(rig, done, timeout, f"flow run {run_id} to end")


def task_runs(rig, run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    return client_call(rig["server"], lambda c: c.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))))


def gate_running(rig, run_id, gate="baseline"):
    """The flow run once its gate task runs on the pod."""
    def running():
        if any(t.name.startswith(f"gate {gate} on ") and t.state and t.state.is_running()
               for t in task_runs(rig, run_id)):
            return client_call(rig["server"], lambda c: c.read_flow_run(run_id))
    return wait_for(rig, running, 240, f"gate {gate} to run")


def process_started(rig, run_id):
    """The flow run once its process runs (the worker gave it its pods; no gate yet)."""
    def started():
        r = client_call(rig["server"], lambda c: c.read_flow_run(run_id))
        return r if r.infrastructure_pid and r.state.is_running() else None
    return wait_for(rig, started, 120, "the run's process to start", poll_s=0.2)


def created(rig, n0: int) -> list[str]:
    """The pods created after the first ``n0`` operations."""
    api = rig["api"]
    if len(api.ops) <= n0:
        return []
    return [p.id for p in list(api.pods.values()) + list(api.gone.values())
            if any(o == f"create {p.gpu}" for o in api.ops[n0:]) and p.created >= api.times[n0]]


def leases(rig) -> list:
    return list((rig["root"] / "worker-art" / "pods" / "worker").glob("*.json"))


def run_logs(rig, run_id) -> list:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    return client_call(rig["server"], lambda c: c.read_logs(log_filter=LogFilter(
        flow_run_id=LogFilterFlowRunId(any_=[run_id]))))


def create_request(rig, pod) -> dict:
    """What the worker asked RunPod for when it created ``pod`` (the GraphQL text the SDK sent)."""
    api = rig["api"]
    gone = {**api.pods, **api.gone}
    q = [q for q in api.queries if "podFindAndDeployOnDemand" in q and f'name: "{gone[pod].name}"' in q
         and '"NVIDIA H200"' in q]
    assert len(q) == 1, q
    return {"env": dict(re.findall(r'\{ key: "([^"]*)", value: "([^"]*)" \}', q[0])),
            "dockerArgs": re.search(r'dockerArgs: "([^"]*)"', q[0]).group(1),
            "volumeInGb": int(re.search(r"volumeInGb: (\d+)", q[0]).group(1)),
            "volumeMountPath": re.search(r'volumeMountPath: "([^"]*)"', q[0]).group(1)}


def test_a_deployment_run_reaches_a_decision_on_fresh_pods_trusted_only_by_the_key_they_were_given(rig, tmp_path):
    api, art = rig["api"], tmp_path / "art"
    n0 = len(api.ops)
    run = final(rig, start(rig, art, idle_stop_s=60))
    assert run.state.is_completed(), run.state.message
    # the deployment's GPU types in order: no capacity for the H100, the H200 is used
    assert api.ops[n0:n0 + 2] == ["create NVIDIA H100 80GB HBM3", "create NVIDIA H200"]
    [pod] = created(rig, n0)
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]
    assert_expected_decision(decision["decision"])  # the same as on this machine (tests/flows/conftest.py)
    assert run.state.name == "Shipped", run.state.message
    assert {x["gate"] for x in jsonl(art) if x["kind"] == "gate_result"} == {
        "validate", "baseline", "minirocket", "augment", "pretrain", "transfer"}
    # the create request: a host key for this pod, our SSH key as PUBLIC_KEY, a start command that
    # starts the watchdog and ends with the image's own start, no volume
    req = create_request(rig, pod)
    client_pub = (rig["root"] / "client_key.pub").read_text().split()
    assert req["env"]["PUBLIC_KEY"] == " ".join(client_pub[:2])
    given = public_from_private(base64.b64decode(req["env"]["MOOLA_HOST_KEY"]).decode())
    assert req["dockerArgs"] == START_COMMAND
    boot = gzip.decompress(base64.b64decode(req["env"]["MOOLA_BOOT"])).decode().strip().splitlines()
    assert boot[-1] == "exec /start.sh" and any("--idle-stop-s 60 " in x for x in boot)
    assert req["volumeInGb"] == 0
    # the pod was reached with that key and nothing else: no known_hosts, no fingerprint configured
    assert not any(k.startswith(("MOOLA_SSH_KNOWN", "MOOLA_SSH_HOST_KEY")) for k in rig["rig"].env)
    host_pub = api.gone[pod].path("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    assert " ".join(host_pub[:2]) == given
    # its watchdog started with the pod (from its start command, PID 1's environment) and was verified
    assert f"pod {pod} guarded: watchdog pid" in rig["log"].read_text()
    assert "ends itself after 60 s" in api.gone[pod].path(f"/workspace/moola/heartbeat/{pod}.log").read_text()
    # the pod's fresh image was made ready by the run (its own disk: cold), the missing packages installed
    ready = list(api.gone[pod].path("/workspace/moola/env").glob("*/READY"))
    assert len(ready) == 1 and {"pydantic==2.14.4", "scikit-base==1.1.1", "safetensors==0.8.0"} <= set(
        json.loads(ready[0].read_text())["installed"])
    # terminated once, by the run after the last gate's folder came back, before the decision began
    assert api.ops[n0:].count(f"terminate {pod}") == 1 and f"stop {pod}" not in api.ops[n0:]
    assert pod not in api.pods and api.billing() == []
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    decide = client_call(rig["server"], lambda c: c.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id]))))
    assert decide and api.when(f"terminate {pod}") < min(d.start_time.timestamp() for d in decide)
    # the pod in the decision record (final figures) and in the worker's record (from the run's receipt)
    assert [p["pod_id"] for p in decision["pods"]] == [pod] and decision["pods"][0]["gpu_type"] == "NVIDIA H200"
    usage = wait_for(rig, lambda: [x for x in jsonl(art) if x["kind"] == "pods"], 30, "the worker's pods record")[-1]
    assert not leases(rig)
    assert usage["flow_run_id"] == str(run.id) and usage["pods"][0]["pod_id"] == pod
    assert usage["pods"][0]["ended"] == "terminated" and usage["pods"][0]["released_by"] == "run"
    assert usage["pods"][0]["uptime_s"] == pytest.approx(decision["pods"][0]["uptime_s"], abs=0.2)
    assert usage["cost_usd"] == pytest.approx(3.99 * usage["pods"][0]["uptime_s"] / 3600, rel=1e-3)
    # no secret in any log: the account key, the pod's private host key
    logs = run_logs(rig, run.id)
    for secret in (KEY, req["env"]["MOOLA_HOST_KEY"][:40]):
        assert secret not in rig["log"].read_text() and not any(secret in x.message for x in logs)
    # the pod's own log lines are in the gate tasks' logs, each in its own task
    names = {t.id: t.name for t in task_runs(rig, run.id)}
    remote_lines = [(names.get(x.task_run_id), x.message) for x in logs if "@127.0.0.1]" in x.message]
    assert {n for n, _ in remote_lines} == {f"gate {g} on {pod}" for g in ("baseline", "minirocket", "augment")}
    assert f"make pod {pod} ready" in names.values()


@pytest.mark.parametrize("bad", [{"pods": 0}, {"pods": 17}, {"gpu_types": []}, {"idle_stop_s": 59},
                                 {"max_usd": 0}, {"gate_timeout_s": -1},
                                 {"pod_image": 'runpod/pytorch:x" } mutation { terminate'},
                                 {"cloud_type": "CHEAP"}])
def test_job_variables_outside_their_limits_are_refused_before_any_run(rig, bad):
    """pods=0 skipped the watchdog and the budget, pods=10**6 asked for a million pods, idle_stop_s=0
    ended every pod at once (below 60 s one slow heartbeat could end a healthy pod), pod_image went
    into the create request's text (only an image reference passes now), gpu_types=[] could never get one: the work pool's schema (from the
    worker's variables) makes the Prefect server refuse such a run; nothing reaches the worker."""
    n0 = len(rig["api"].ops)
    params = {"data": rig["data"], "unlabeled": None, "config": CONFIG, "runner": "runpod"}
    with pytest.raises(Exception) as e:
        client_call(rig["server"], lambda c: c.create_flow_run_from_deployment(
            rig["deployment"].id, parameters=params, job_variables=bad))
    assert list(bad)[0] in str(e.value), e.value
    assert created(rig, n0) == []


def test_missing_data_fails_the_run_before_any_pod_is_created(rig, tmp_path):
    n0 = len(rig["api"].ops)
    run = final(rig, start(rig, tmp_path / "art", data=str(tmp_path / "nope.parquet")))
    assert run.state.is_failed() and run.state.message.startswith("no pod created: the run's data does not pass")
    assert "nope.parquet" in run.state.message
    # no pod asked for (another test's pod may still be ending: its terminate is not this run's)
    assert [o for o in rig["api"].ops[n0:] if o.startswith("create")] == [] and not jsonl(tmp_path / "art")


def test_an_impostor_at_the_pods_address_is_refused(rig, tmp_path):
    """Once the worker verified the pod, another machine answers at the pod's address (its own host
    key, admitting our key): the run's first connection is refused naming the changed key, nothing
    is decided, and the pod is terminated."""
    api, n0 = rig["api"], len(rig["api"].ops)
    log_at = len(rig["log"].read_text())
    # the worker's heartbeats cannot reach the pod past the impostor either (the key is pinned): with
    # a short idle_stop_s the pod's own watchdog would end it too, a second terminate that says nothing
    # about the run (CI saw it on a slow machine). 120 s leaves that path out of this test.
    run_id = start(rig, tmp_path / "art", idle_stop_s=120)
    [pod] = wait_for(rig, lambda: created(rig, n0), 60, "the pod to be created")
    wait_for(rig, lambda: f"pod {pod} guarded" in rig["log"].read_text()[log_at:], 60, "the pod to be guarded",
             poll_s=0.1)
    p = api.pods[pod]
    for pid in p.pids():  # the pod's listening sshd
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"/usr/sbin/sshd") or b"[listener]" in cmd:
            os.kill(pid, signal.SIGKILL)
    (tmp_path / "impostor").mkdir()
    impostor = make_sshd(tmp_path / "impostor", client_key=rig["root"] / "client_key", port=p.port)
    impostor.start()
    try:
        run = final(rig, run_id)
    finally:
        impostor.stop()
    assert run.state.is_failed(), run.state
    assert "CHANGED" in run.state.message and impostor.fingerprint in run.state.message, run.state.message
    assert not [x for x in jsonl(tmp_path / "art") if x["kind"] == "decision"]
    wait_for(rig, lambda: pod not in api.pods, 60, f"{pod} to be terminated")
    assert [(o, by) for o, by in zip(api.ops[n0:], api.by[n0:]) if o == f"terminate {pod}"] == [
        (f"terminate {pod}", "account")]


def test_two_pods_share_the_gates_and_a_pod_lost_mid_gate_hands_its_gate_to_the_other(rig, tmp_path):
    """pods: 2. Baseline first; then minirocket and augment at once, one per pod. The pod running
    augment dies (its machine: every process, the gate's included; the API still says RUNNING):
    the run judges that pod lost, terminates it, and augment runs again on the other pod."""
    api, art, n0 = rig["api"], tmp_path / "art", len(rig["api"].ops)
    run_id = start(rig, art, pods=2, idle_stop_s=60)

    def augment_on_a_pod():  # the gate's own process, seen in the pod that runs it
        for p in list(api.pods.values()):
            for pid in p.pids():
                try:
                    if b"gate\0run\0augment" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return p.id
                except OSError:
                    continue
    victim = wait_for(rig, augment_on_a_pod, 240, "gate augment to run on a pod", poll_s=0.1)
    [other] = [p for p in created(rig, n0) if p != victim]
    api.crash(victim)
    run = final(rig, run_id)
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]
    assert_expected_decision(decision["decision"])  # augment trained again on the other pod: the same model
    assert run.state.name == "Shipped", run.state.message
    # the record says which gate moved, from where to where, and why
    assert [(m["unit"], m["from"], m["to"]) for m in decision["moves"]] == [("augment", victim, other)]
    assert decision["moves"][0]["why"].startswith("ssh unreachable ")
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
    # every pod terminated, each once, by the run: the lost one as soon as it was judged lost, the
    # other after the last gate; none is left billing
    wait_for(rig, lambda: [x for x in jsonl(art) if x["kind"] == "pods"], 30, "the worker's pods record")
    assert not leases(rig)
    assert api.ops.count(f"terminate {victim}") == 1 and api.ops.count(f"terminate {other}") == 1
    assert api.when(f"terminate {victim}") < api.when(f"terminate {other}") < run.end_time.timestamp()
    assert not {victim, other} & set(api.pods) and api.billing() == []
    usage = [x for x in jsonl(art) if x["kind"] == "pods"][-1]
    assert {(p["pod_id"], p.get("released_by")) for p in usage["pods"]} == {(victim, "run"), (other, "run")}
    assert usage["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in usage["pods"]), abs=1e-5)


def test_sigkill_of_the_flow_process_ends_the_pod_within_seconds(rig, tmp_path):
    n0 = len(rig["api"].ops)
    run = process_started(rig, start(rig, tmp_path / "art", idle_stop_s=60))
    [pod] = created(rig, n0)
    host, _, pid = run.infrastructure_pid.rpartition(":")
    t_kill = time.time()
    os.kill(int(pid), signal.SIGKILL)
    wait_for(rig, lambda: rig["api"].when(f"terminate {pod}") and not leases(rig), 30, f"{pod} to end")
    assert rig["api"].when(f"terminate {pod}") - t_kill < 10
    assert final(rig, run.id).state.is_crashed()


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


def test_crossing_the_budget_ends_the_pods_and_fails_the_run_with_the_figure(rig, tmp_path):
    n0 = len(rig["api"].ops)
    run = final(rig, start(rig, tmp_path / "art", max_usd=0.002, idle_stop_s=60))  # $3.99/h: ~2 s
    [pod] = created(rig, n0)
    assert run.state.is_failed() and run.state.message.startswith("budget: $"), run.state.message
    assert float(run.state.message.split("$")[1].split()[0]) > 0.002  # the figure said, whatever the machine's speed
    assert "passed max_usd $0.0020" in run.state.message
    wait_for(rig, lambda: not leases(rig), 30, "the lease records to go")
    assert pod not in rig["api"].pods
    # the worker writes its record after it ended the pods (their lease records go first): waited for
    usage = wait_for(rig, lambda: [x for x in jsonl(tmp_path / "art") if x["kind"] == "pods"], 30,
                     "the worker's pods record")[-1]
    assert usage["budget_stop"] == run.state.message and usage["cost_usd"] > 0.002


def test_the_machine_of_the_worker_dies_mid_gate_and_the_pod_terminates_itself(rig, tmp_path):
    """The worker and the run's process are SIGKILLed (the orchestrating machine died): nothing sends
    heartbeats any more, and the pod's own watchdog terminates it (its pod-scoped key) within
    idle_stop_s + 60 s. A new worker is started after it: its sweep finds the dead worker's lease
    record of the (now Crashed) run and ends that pod again, which RunPod answers with "gone" (the
    worker cannot know the watchdog ended it without asking; a terminate of a gone pod is harmless).
    That second terminate is awaited here, so it never lands in a later test's window."""
    from prefect.states import Crashed
    api, n0, idle = rig["api"], len(rig["api"].ops), 60  # the least a pod may be set to
    run = gate_running(rig, start(rig, tmp_path / "art", idle_stop_s=idle))
    [pod] = created(rig, n0)
    t_kill = time.time()
    os.killpg(rig["rig"].worker.pid, signal.SIGKILL)
    os.kill(int(run.infrastructure_pid.rpartition(":")[2]), signal.SIGKILL)
    try:
        wait_for(rig, lambda: pod not in api.pods, idle + 60, f"{pod} to terminate itself", worker_may_exit=True)
        assert api.when(f"terminate {pod}") - t_kill <= idle + 60
        assert api.by[len(api.ops) - 1 - api.ops[::-1].index(f"terminate {pod}")] == pod  # its own key
        assert "no heartbeat for 60 s: ending pod" in api.gone[pod].path(f"/workspace/moola/heartbeat/{pod}.log").read_text()
        assert leases(rig)  # the dead worker's record of it is still there
    finally:
        client_call(rig["server"], lambda c: c.set_flow_run_state(run.id, Crashed(message="test"), force=True))
        log_at = len(rig["log"].read_text())
        rig["rig"].start_worker()
    wait_for(rig, lambda: not leases(rig), 60, "the new worker to sweep the dead worker's record")
    assert [(o, by) for o, by in zip(api.ops[n0:], api.by[n0:]) if o == f"terminate {pod}"] == [
        (f"terminate {pod}", pod), (f"terminate {pod}", "account")]
    assert f"ended 1 pod(s) left by flow run {run.id} (Crashed)" in rig["log"].read_text()[log_at:]


def test_cancelling_from_the_ui_ends_the_pod(rig, tmp_path):
    """Last of the module's runs: the cancelled process takes up to ~30 s to stop, and the
    deployment's concurrency limit of 1 would make a next run wait for it."""
    from prefect.states import Cancelling
    n0 = len(rig["api"].ops)
    run = process_started(rig, start(rig, tmp_path / "art", idle_stop_s=60))
    [pod] = created(rig, n0)
    t_cancel = time.time()
    client_call(rig["server"], lambda c: c.set_flow_run_state(run.id, Cancelling(), force=True))
    wait_for(rig, lambda: rig["api"].when(f"terminate {pod}") and not leases(rig), 60, f"{pod} to end")
    assert rig["api"].when(f"terminate {pod}") - t_cancel < 10
    # the pods did not wait for the process, which Prefect's runner stops (or the worker, 15 s later)
    state = client_call(rig["server"], lambda c: c.read_flow_run(run.id)).state
    assert state.is_cancelling() or state.is_cancelled(), state


def test_a_restarted_worker_ends_the_pods_of_runs_that_ended_or_never_started_without_it(server, tmp_path,
                                                                                       monkeypatch):
    """The worker that leased them died (SIGKILL, reboot): its successor ends the pods of runs that
    are over or gone, of a run its dead worker never started (Pending: marked Failed), and of a
    running run whose pod was never guarded (no watchdog would ever end it); it leaves the guarded
    pod of a run still going to its watchdog, and the pods of a run whose state the API cannot
    give (an error other than ObjectNotFound). Then the account's list: a pod named after an ended
    run with no record is ended; one named after a live run, or after a run this server does not
    know (another server's), is left. A malformed record crashes nothing. This worker has no
    RUNPOD_API_KEY: it reads the key from the Secret blocks the records (and its default) name."""
    import asyncio
    import uuid

    from moola_flows.worker import API_KEY_BLOCK, RunPodWorker, leases_dir
    from prefect.client.orchestration import PrefectClient
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Completed, Pending, Running

    from moola.core.files import write_json_atomic
    from moola.settings import load_settings
    from tests.fakes.runpod_emulator import Pod, RunPodEmulator

    deploy(server)  # its own: it passes alone too (once per server; nothing when the rig deployed already)
    api = RunPodEmulator(tmp_path / "pods", api_key=KEY)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(tmp_path / "art"))
    dep = client_call(server, lambda c: c.read_deployment_by_name("gates/full"))
    # each run is made in its state, never Scheduled: a live worker of this pool (the module's rig)
    # would otherwise claim one in between and change it (seen once: the ended run was not final)
    states = (Running(), Pending(), Running(), Completed(), Running())
    live_run, pending_run, raw_run, ended_run, sick_run = (
        client_call(server, lambda c: c.create_flow_run_from_deployment(dep.id, parameters={
            "data": "x", "runner": "local"}, state=state)) for state in states)
    for run, state in zip((live_run, pending_run, raw_run, ended_run, sick_run), states):
        client_call(server, lambda c: c.set_flow_run_state(run.id, state.model_copy(), force=True))
        assert client_call(server, lambda c: c.read_flow_run(run.id)).state.type == state.type
    foreign = uuid.uuid4()
    named = {"podgone": "moola-podgone", "podlive": "moola-podlive", "podpending": "moola-podpending",
             "podraw": "moola-podraw", "podsick": "moola-podsick", "podended": f"moola-{ended_run.id}-0",
             "podlivename": f"moola-{live_run.id}-1", "podforeign": f"moola-{foreign}-0"}
    for pod, name in named.items():
        api.pods[pod] = Pod(pod, name, "img", "NVIDIA H200", {}, "", 0, "/runpod-volume", 30, "k", tmp_path / pod)
    records = leases_dir(load_settings())
    records.mkdir(parents=True)
    dead = {"host": os.uname().nodename, "pid": 2 ** 22 + 11}  # beyond pid_max: a process that is gone
    for pod, run_id, guarded in (("podgone", str(uuid.uuid4()), True), ("podlive", str(live_run.id), True),
                                 ("podpending", str(pending_run.id), False), ("podraw", str(raw_run.id), False),
                                 ("podsick", str(sick_run.id), False)):
        write_json_atomic(records / f"{run_id}.0.json", {"pod_id": pod, "started_wall": time.time() - 60,
                                                          "cost_per_hr": 3.99, "run_id": run_id, "created": True,
                                                          "owner": dead, "api_key_secret": "my-runpod-key",
                                                          **({"guarded": True} if guarded else {})})
    (records / "000-broken.json").write_text("[1, 2")
    real_read = PrefectClient.read_flow_run

    async def read_flow_run(self, flow_run_id):
        if flow_run_id == sick_run.id:  # the server's own trouble, not "this run does not exist"
            import httpx
            request = httpx.Request("GET", f"http://server/flow_runs/{flow_run_id}")
            raise PrefectHTTPStatusError("503", request=request, response=httpx.Response(503, request=request))
        return await real_read(self, flow_run_id)
    monkeypatch.setattr(PrefectClient, "read_flow_run", read_flow_run)

    async def start_and_stop():
        async with RunPodWorker(work_pool_name="runpod"):
            pass
    from prefect.blocks.system import Secret
    try:
        with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
            for block in ("my-runpod-key", API_KEY_BLOCK):
                Secret(value=KEY).save(block, overwrite=True)
            asyncio.run(start_and_stop())
        pending = client_call(server, lambda c: c.read_flow_run(pending_run.id))
    finally:
        api.close()
        for r in (live_run, pending_run, raw_run, ended_run, sick_run):
            client_call(server, lambda c: c.delete_flow_run(r.id))
    assert sorted(api.ops) == ["terminate podended", "terminate podgone", "terminate podpending",
                               "terminate podraw"], api.ops
    assert set(api.pods) == {"podlive", "podsick", "podlivename", "podforeign"}
    assert pending.state.is_failed() and "worker died while acquiring" in pending.state.message
    assert sorted(p.name for p in records.glob("*.json")) == sorted(
        ["000-broken.json", f"{live_run.id}.0.json", f"{sick_run.id}.0.json"])

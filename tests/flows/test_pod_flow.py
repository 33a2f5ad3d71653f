"""The gates flow with the runpod runner and no worker: the flow leases one pod per run itself (a fake
of the RunPod API whose pod is the loopback sshd), Gate 0 before any pod, and the pod stopped on every
exit path. A whole run with its gates over ssh on a pod is in tests/flows/test_worker.py (the
`runpod` worker owns the pod there; the gates and the pod's preparation are the same tasks)."""

from __future__ import annotations

import getpass
import json
import sys
import time
from types import SimpleNamespace

import pytest

from tests.fakes.fake_runpod import FakeRunPod
from tests.flows.conftest import CONFIG, jsonl


@pytest.fixture
def pod(sshd, tmp_path, monkeypatch):  # noqa: F811
    env = {"MOOLA_SSH_USER": getpass.getuser(), "MOOLA_SSH_KEY": str(sshd.client_key),
           "MOOLA_SSH_KNOWN_HOSTS": str(sshd.known_hosts), "MOOLA_REMOTE_WORKDIR": str(tmp_path / "remote"),
           "MOOLA_POD_PYTHON": sys.executable, "MOOLA_SSH_TIMEOUT": "3", "RUNPOD_POD_ID": "existing",
           "RUNPOD_API_KEY": "rp_never_sent", "MOOLA_POD_LOST_AFTER_S": "6"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    fake = FakeRunPod(ssh_port=sshd.port, boot_polls=0)
    import moola_flows.pod
    monkeypatch.setattr(moola_flows.pod, "run_api", lambda settings, block=None: fake)
    return fake


def test_a_permanent_failure_still_stops_the_pod(prefect_server, pod, sample_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MOOLA_SSH_KNOWN_HOSTS")
    monkeypatch.setenv("MOOLA_SSH_HOST_KEY_SHA256", "SHA256:" + "A" * 43)  # not the pod's key
    from moola_flows.gates import gates
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), runner="runpod", config=CONFIG, artifacts=str(art),
                  return_state=True)
    assert state.is_failed() and "host key" in state.message.lower()
    assert pod.calls.count("stop existing") == 1 and pod.calls[-1] == "stop existing"
    assert not [x for x in jsonl(art) if x["kind"] == "decision"]  # no decision, nothing shipped


def test_invalid_data_never_starts_a_pod(prefect_server, pod, sample_frame, write_frame, tmp_path):
    from moola_flows.gates import gates
    df = sample_frame.copy()
    df.at[df.index[5], "features"] = df.at[df.index[5], "features"][:-4]  # one window too short
    state = gates(data=str(write_frame(df)), runner="runpod", artifacts=str(tmp_path / "art"), return_state=True)
    assert state.is_failed() and state.message.startswith("blocked: Gate 0 failed")
    assert pod.calls == []


def test_the_hook_stops_a_pod_the_flow_could_not(prefect_server, pod, tmp_path):
    """Crash or cancellation skip the flow's finally: the hook finds the lease on disk and stops it."""
    from moola_flows.pod import acquire_pod, lease_file, stop_pod_hook
    art = str(tmp_path / "art")
    got = acquire_pod.fn(art, "run-1")
    assert (got.host, got.port, got.pod_id) == ("127.0.0.1", pod.ssh_port, "existing")
    assert lease_file(art, "run-1").is_file()
    run = SimpleNamespace(id="run-1", parameters={"runner": "runpod", "artifacts": art})
    stop_pod_hook(None, run, None)
    stop_pod_hook(None, run, None)  # idempotent: a second hook (or the finally) does nothing
    assert pod.calls.count("stop existing") == 1 and not lease_file(art, "run-1").exists()
    stop_pod_hook(None, SimpleNamespace(id="run-2", parameters={"runner": "local", "artifacts": art}), None)
    assert pod.calls.count("stop existing") == 1


def test_no_capacity_is_retried_until_capacity_appears(prefect_server, pod, tmp_path, monkeypatch):
    import threading

    from moola_flows.pod import acquire_pod, lease_file
    monkeypatch.delenv("RUNPOD_POD_ID")  # create, not resume
    pod.capacity = set()
    threading.Timer(2.0, lambda: pod.capacity.add("NVIDIA H200")).start()
    got = acquire_pod.fn(str(tmp_path), "run-3", deadline_s=60)
    assert (got.host, got.port, got.gpu_type) == ("127.0.0.1", pod.ssh_port, "NVIDIA H200")
    creates = [c for c in pod.calls if c.startswith("create")]
    assert len(creates) >= 4 and creates[-1] == "create NVIDIA H200"  # both types tried per round
    assert len([c for c in creates if c == "create NVIDIA H200"]) >= 2
    assert json.loads(lease_file(str(tmp_path), "run-3").read_text())["pod_id"] == "pod-1"


def test_no_capacity_until_the_deadline_fails_the_flow_without_a_pod(prefect_server, pod, sample_dir, tmp_path,
                                                                    monkeypatch):
    from moola_flows.gates import gates
    monkeypatch.delenv("RUNPOD_POD_ID")
    pod.capacity = set()
    t0 = time.monotonic()
    state = gates(data=str(sample_dir / "train.parquet"), runner="runpod", config=CONFIG,
                  artifacts=str(tmp_path / "art"), pod_deadline_s=3, return_state=True)
    assert state.is_failed() and "no capacity" in state.message
    assert time.monotonic() - t0 < 60
    assert not [c for c in pod.calls if c.startswith("stop")] and len(pod.pods) == 1  # none created


def test_a_failing_stop_is_retried_and_never_forgotten(prefect_server, pod, tmp_path, monkeypatch):
    import moola_flows.pod
    from moola_flows.pod import acquire_pod, lease_file, release_pod

    from moola.core.errors import RemoteUnavailable
    monkeypatch.setattr(moola_flows.pod, "STOP_RETRY_S", 0.0)
    real_stop, failures = pod.stop_pod, [2]

    def flaky_stop(pod_id):
        if failures[0] > 0:
            failures[0] -= 1
            raise RemoteUnavailable("RunPod API unreachable: ConnectionError")
        return real_stop(pod_id)
    monkeypatch.setattr(pod, "stop_pod", flaky_stop)
    art = str(tmp_path / "art")
    acquire_pod.fn(art, "run-4")
    assert release_pod(art, "run-4")["stopped"] and not lease_file(art, "run-4").exists()  # third try

    acquire_pod.fn(art, "run-5")
    failures[0] = 99  # the API stays down: the lease is kept for the hook or a later release
    assert not release_pod(art, "run-5")["stopped"] and lease_file(art, "run-5").is_file()
    failures[0] = 0
    assert release_pod(art, "run-5")["stopped"] and not lease_file(art, "run-5").exists()


def test_the_runs_only_pod_lost_mid_gate_fails_the_run_clean_with_the_pod_stopped(prefect_server, pod, sample_dir,
                                                                                   tmp_path, monkeypatch):
    """The pod's sshd (and the gate running under it) killed while the baseline trains: the run
    judges the pod lost (API still says RUNNING, ssh refused for LOST_RUNNING_S), stops it, has no pod left for
    the gate, and fails naming the pod and the gates that never ran; no decision is recorded."""
    import threading

    from tests.fakes.sshd_server import make_sshd
    (tmp_path / "pod").mkdir()
    own = make_sshd(tmp_path / "pod")  # its own sshd: the session's stays up for the other tests
    own.start()
    monkeypatch.setenv("MOOLA_SSH_KEY", str(own.client_key))
    monkeypatch.setenv("MOOLA_SSH_KNOWN_HOSTS", str(own.known_hosts))
    pod.ssh_port = own.port
    remote = tmp_path / "remote"
    killed = threading.Event()

    def kill_once_the_baseline_runs():
        t_end = time.monotonic() + 240
        while time.monotonic() < t_end and not killed.is_set():
            if list((remote / "runs").glob(".baseline-*")) or list((remote / "runs").glob("baseline-*")):
                own.stop()
                killed.set()
            time.sleep(0.1)
    watcher = threading.Thread(target=kill_once_the_baseline_runs, daemon=True)
    watcher.start()
    from moola_flows.gates import gates
    art = tmp_path / "art"
    try:
        state = gates(data=str(sample_dir / "train.parquet"), unlabeled=None, runner="runpod", config=CONFIG,
                      artifacts=str(art), return_state=True)
    finally:
        killed.set()
        own.stop()
    assert state.is_failed(), state.message
    assert "every pod of the run was lost (existing: ssh unreachable " in state.message
    assert "never finished: baseline, minirocket, augment" in state.message
    assert pod.calls.count("stop existing") == 1 and pod.pods["existing"]["desiredStatus"] == "EXITED"
    assert not [x for x in jsonl(art) if x["kind"] == "decision"]


def test_a_runs_process_finds_the_api_key_in_the_workers_secret_block(prefect_server, monkeypatch):
    """A worker that took its key from a Secret block hands the run the block's name (never the key);
    the run needs the key to stop a pod it found lost."""
    from moola_flows.pod import KEY_SECRET_ENV, run_api
    from prefect.blocks.system import Secret

    from moola.core.errors import ConfigError
    from moola.settings import Settings
    Secret(value="rp_from_the_block").save("moola-test-runpod-key", overwrite=True)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.setenv(KEY_SECRET_ENV, "moola-test-runpod-key")
    assert run_api(Settings(_env_file=None))._secret == "rp_from_the_block"
    monkeypatch.setenv(KEY_SECRET_ENV, "no-such-block")
    with pytest.raises(ConfigError, match="Secret block 'no-such-block' could not be loaded"):
        run_api(Settings(_env_file=None))
    monkeypatch.delenv(KEY_SECRET_ENV)
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY is not set"):
        run_api(Settings(_env_file=None))


def test_a_lost_pod_the_run_cannot_stop_is_left_to_the_worker_not_a_failed_run(tmp_path, monkeypatch):
    from moola_flows.pod import KEY_SECRET_ENV, PodJudge

    from moola.pods.fleet import Pod
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    record = tmp_path / "run.0.json"
    record.write_text(json.dumps({"pod_id": "pod9", "run_id": "r"}))
    judge = PodJudge(str(tmp_path), "r")
    judge.release(Pod(pod_id="pod9", host="127.0.0.1", port=22, record=record))  # no API key here: logged, not raised
    assert judge.released == {} and record.is_file()  # the worker still finds it and stops it


def test_a_running_pod_whose_sshd_restarts_is_not_lost_and_one_that_stays_away_is(pod, tmp_path, monkeypatch):
    """The judge called a pod RunPod reports RUNNING lost after ~4 s of refused ssh (3 tries), so a
    restarting sshd ended a live pod, and with one pod the run. Now ssh must stay away for its window."""
    import threading

    from moola_flows.pod import PodJudge

    from moola.pods.fleet import Pod
    from tests.fakes.sshd_server import make_sshd
    (tmp_path / "pod").mkdir()
    own = make_sshd(tmp_path / "pod")
    own.start()
    monkeypatch.setenv("MOOLA_SSH_KEY", str(own.client_key))
    monkeypatch.setenv("MOOLA_SSH_KNOWN_HOSTS", str(own.known_hosts))
    pod.pods["existing"]["desiredStatus"] = "RUNNING"
    where = Pod(pod_id="existing", host="127.0.0.1", port=own.port)
    own.stop()
    back = threading.Timer(6.0, own.start)
    back.start()
    try:
        t0 = time.monotonic()
        assert PodJudge(str(tmp_path / "art"), "run-1").why_lost(where) is None
        assert time.monotonic() - t0 >= 5  # it waited for the sshd rather than judging at once
    finally:
        back.join()
    own.stop()
    why = PodJudge(str(tmp_path / "art"), "run-1", window_s=3).why_lost(where)
    import re
    got = re.match(r"ssh unreachable (\d+) times in (\d+) s ", why or "")
    assert got and int(got.group(1)) >= 2 and int(got.group(2)) >= 3, why
    pod.pods["existing"]["desiredStatus"] = "EXITED"  # what RunPod says is believed at once
    assert PodJudge(str(tmp_path / "art"), "run-1").why_lost(where) == "RunPod reports it EXITED"


def test_pods_from_a_worker_of_another_moola_version_are_one_clear_error(monkeypatch):
    from moola_flows.pod import worker_pods

    from moola.core.errors import ConfigError
    from moola.pods.fleet import HANDOVER_ENV
    monkeypatch.setenv(HANDOVER_ENV, json.dumps([{"pod_id": "p1", "host": "h", "port": 22, "ssh_port": 22}]))
    with pytest.raises(ConfigError, match="MOOLA_PODS: the worker's pods do not read as this moola's .*same moola"):
        worker_pods()
    monkeypatch.setenv(HANDOVER_ENV, json.dumps([{"pod_id": "p1", "host": "h", "port": 22, "record": "/r.0.json"}]))
    assert [(p.pod_id, p.address, str(p.record)) for p in worker_pods()] == [("p1", ("h", 22), "/r.0.json")]
    monkeypatch.delenv(HANDOVER_ENV)
    assert worker_pods() is None

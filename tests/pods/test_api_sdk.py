"""RunPodSDK (the real `runpod` package over HTTP) against the RunPod emulator's API (pods without
containers here): request shapes, response parsing and the error classification at the boundary,
as the real API answers (a bad key is HTTP 200 with a GraphQL error; "Something went wrong" is
transient; an HTML 403 is not)."""

from __future__ import annotations

import pytest

from moola.core.errors import RemotePermanent, RemoteUnavailable
from moola.pods.api import PodLease, PodSpec, RunPodSDK
from moola.pods.boot import HOST_KEY_ENV, START_COMMAND, new_identity
from tests.fakes.runpod_emulator import SOMETHING_WRONG, Pod, RunPodEmulator

KEY = "rp_test_key"


@pytest.fixture
def api(monkeypatch, tmp_path):
    emu = RunPodEmulator(tmp_path / "pods", api_key=KEY)
    monkeypatch.setenv("RUNPOD_API_BASE_URL", emu.url)
    yield emu
    emu.close()


def lease(sdk, **kw) -> PodLease:
    return PodLease(sdk, PodSpec(gpu_types=["NVIDIA H100 80GB HBM3", "NVIDIA H200"], client_public="ssh-ed25519 AAAAx"),
                    poll=0.01, **kw)


def users_pod(api, tmp_path, pod_id="abc", env=None):
    api.pods[pod_id] = Pod(pod_id, "mine", "img", "NVIDIA H200", env or {}, "", 50, "/workspace", 30, "k",
                           tmp_path / pod_id, cost_per_hr=2.5, status="EXITED")


def test_a_created_pod_carries_its_boot_and_is_terminated_on_release(api):
    ls = lease(RunPodSDK(KEY))
    host, port = ls.acquire()
    assert (host, port) == ("127.0.0.1", api.pods["pod1"].port)
    assert api.ops == ["create NVIDIA H100 80GB HBM3", "create NVIDIA H200"]
    pod = api.pods["pod1"]
    assert pod.docker_args == START_COMMAND and pod.env["PUBLIC_KEY"] == "ssh-ed25519 AAAAx"
    assert HOST_KEY_ENV in pod.env and ls.host_key.startswith("ssh-ed25519 ") and ls.created
    assert pod.volume_gb == 0 and pod.container_disk_gb == 30
    out = ls.release()
    assert out["stopped"] and out["ended"] == "terminated" and api.ops[-1] == "terminate pod1"
    assert "pod1" not in api.pods and api.billing() == [] and ls.cost_per_hr == 3.99


def test_a_volume_is_mounted_at_workspace_and_costed_while_the_pod_lives(api):
    ls = PodLease(RunPodSDK(KEY), PodSpec(gpu_types=["NVIDIA H200"], client_public="ssh-ed25519 AAAAx", volume_gb=50),
                  poll=0.01)
    ls.acquire()
    assert api.pods["pod1"].volume_mount_path == "/workspace" and api.pods["pod1"].volume_gb == 50
    assert ls.cost_per_hr == pytest.approx(3.99 + 50 * 0.20 / 730)


def test_the_users_own_pod_is_resumed_and_stopped_never_terminated(api, tmp_path):
    users_pod(api, tmp_path)
    ls = lease(RunPodSDK(KEY), pod_id="abc")
    assert ls.acquire() == ("127.0.0.1", api.pods["abc"].port) and api.ops == ["resume abc"]
    assert ls.host_key is None and not ls.created  # not moola's: known_hosts or a fingerprint pins it
    assert ls.release()["ended"] == "stopped" and api.ops == ["resume abc", "stop abc"]
    assert api.pods["abc"].status == "EXITED" and api.billing() == ["abc"]  # its volume still bills


def test_a_resumed_pod_moola_created_keeps_the_host_key_it_was_given(api, tmp_path):
    import base64
    ident = new_identity()
    users_pod(api, tmp_path, "kept", env={HOST_KEY_ENV: base64.b64encode(ident.private.encode()).decode()})
    ls = lease(RunPodSDK(KEY), pod_id="kept")
    ls.acquire()
    assert ls.host_key == ident.public


def test_a_missing_pod_is_permanent(api):
    with pytest.raises(RemotePermanent, match="RunPod pod gone .* does not exist"):
        lease(RunPodSDK(KEY), pod_id="gone").acquire()


def test_no_capacity_is_transient(api):
    api.capacity = set()
    with pytest.raises(RemoteUnavailable, match="no capacity for any of NVIDIA H100 80GB HBM3, NVIDIA H200"):
        lease(RunPodSDK(KEY)).acquire()


def test_a_wrong_key_answered_with_http_200_unauthorized_is_permanent_and_never_shown(api):
    with pytest.raises(RemotePermanent, match="RunPod rejected the API key") as err:
        lease(RunPodSDK("rp_wrong_key")).acquire()
    assert "rp_wrong_key" not in str(err.value)


def test_something_went_wrong_is_transient(api):
    api.fail_next = [SOMETHING_WRONG]
    with pytest.raises(RemoteUnavailable, match="transient"):
        RunPodSDK(KEY).create_pod(name="moola-x", image_name="img", gpu_type_id="NVIDIA H200", cloud_type="SECURE",
                                  gpu_count=1, volume_in_gb=0, container_disk_in_gb=30, ports="22/tcp")


def test_an_html_403_is_permanent_and_an_html_502_transient(api):
    api.html_next = [403]
    with pytest.raises(RemotePermanent, match="403 Forbidden"):
        RunPodSDK(KEY).get_pod("x")
    api.html_next = [502]
    with pytest.raises(RemoteUnavailable, match="not JSON"):
        RunPodSDK(KEY).get_pod("x")


def test_ending_a_pod_that_is_already_gone_is_done_not_an_error(api):
    ls = lease(RunPodSDK(KEY))
    ls.acquire()
    api.answer('mutation { podTerminate(input: { podId: "pod1" }) }', KEY)  # terminated in the console
    out = ls.release()
    assert out["stopped"] and out["ended"] == "gone"


def test_an_unknown_gpu_type_is_permanent(api):
    ls = PodLease(RunPodSDK(KEY), PodSpec(gpu_types=["NVIDIA H100 80GB"], client_public="ssh-ed25519 AAAAx"), poll=0.01)
    with pytest.raises(RemotePermanent, match="NVIDIA H100 80GB"):
        ls.acquire()


def test_api_down_is_transient(api):
    api.close()
    with pytest.raises(RemoteUnavailable, match="RunPod API unreachable"):
        lease(RunPodSDK(KEY), pod_id="abc").acquire()


def test_moola_pods_lists_and_cleans_only_moola_pods_nobody_owns(api, tmp_path):
    import json
    import os
    import socket

    from moola.pods.listing import clean, moola_pods
    users_pod(api, tmp_path)  # named "mine": never listed, never touched
    owned, loose = lease(RunPodSDK(KEY)), lease(RunPodSDK(KEY))
    owned.spec.name = loose.spec.name = "moola-run1"
    owned.acquire()
    loose.acquire()
    rec = tmp_path / "art" / "pods" / "worker"
    rec.mkdir(parents=True)
    (rec / "run1.0.json").write_text(json.dumps({"pod_id": owned.pod_id, "run_id": "run1", "owner": {
        "host": socket.gethostname(), "pid": os.getpid()}}))
    (rec / "dead.0.json").write_text(json.dumps({"pod_id": loose.pod_id, "run_id": "run0", "owner": {
        "host": socket.gethostname(), "pid": 2 ** 22 + 7}}))  # beyond pid_max: a gone process
    pods = {p["pod_id"]: p for p in moola_pods(RunPodSDK(KEY), tmp_path / "art")}
    assert set(pods) == {owned.pod_id, loose.pod_id}
    assert pods[owned.pod_id]["owned"] and not pods[loose.pod_id]["owned"]
    assert pods[loose.pod_id]["status"] == "RUNNING" and pods[loose.pod_id]["cost_per_hr"] == 3.99
    done = clean(RunPodSDK(KEY), list(pods.values()))
    assert done == [{"pod_id": loose.pod_id, "ended": "terminated"}]
    assert set(api.pods) == {"abc", owned.pod_id} and not (rec / "dead.0.json").exists()


def test_moola_pods_and_pods_clean_on_the_command_line(api, tmp_path, monkeypatch, capsys):
    import json

    from moola.cli.main import main
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(tmp_path / "art"))
    ls = lease(RunPodSDK(KEY))
    ls.spec.name = "moola-run9"
    ls.acquire()
    assert main(["pods"]) == 0
    out = capsys.readouterr().out
    assert ls.pod_id in out and "NVIDIA H200" in out and "`moola pods clean` terminates it" in out
    assert main(["pods", "--json"]) == 0
    assert [p["pod_id"] for p in json.loads(capsys.readouterr().out)] == [ls.pod_id]
    assert main(["pods", "clean"]) == 2  # no terminal to ask on, no --yes: nothing terminated
    assert "rerun with --yes" in capsys.readouterr().err and ls.pod_id in api.pods
    assert main(["pods", "clean", "--yes"]) == 0
    assert f"{ls.pod_id}: terminated" in capsys.readouterr().out and ls.pod_id not in api.pods
    assert main(["pods"]) == 0 and "no moola pods" in capsys.readouterr().out
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_wrong")
    assert main(["pods"]) == 1  # a refused key: an infrastructure error (exit 1), said in one line
    assert "RunPod rejected the API key" in capsys.readouterr().err


def test_sigterm_to_moola_gate_run_with_the_runpod_runner_ends_its_pod(api, tmp_path, sample_dir):
    """A CI cancel or `timeout` sends SIGTERM: the command unwinds like Ctrl-C and terminates the pod
    it created (here an API-only pod whose SSH never answers: the command waits on it)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "MOOLA_"))}
    env.update(RUNPOD_API_KEY=KEY, RUNPOD_API_BASE_URL=api.url, MOOLA_SSH_KEY=str(tmp_path / "key"),
               RUNPOD_GPU_TYPES="NVIDIA H200", MOOLA_ARTIFACTS=str(tmp_path / "art"), MOOLA_SSH_TIMEOUT="1")
    proc = subprocess.Popen([sys.executable, "-m", "moola.cli", "gate", "run", "validate", "--data",
                             str(sample_dir / "train.parquet"), "--out", str(tmp_path / "out"), "--runner", "runpod",
                             "--retry-for", "120"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    t_end = time.monotonic() + 60
    while not api.pods and time.monotonic() < t_end:
        time.sleep(0.2)
    assert api.pods, proc.communicate(timeout=5)
    time.sleep(1.0)  # waiting for SSH on it now
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert api.pods == {} and [o for o in api.ops if o.startswith("terminate")] == ["terminate pod1"], out
    assert not list((tmp_path / "art" / "pods").glob("*.json"))  # its lease record went with it

"""The emulated pods behave as RunPod's do where moola depends on it (tests/fakes/runpod_emulator.py),
and moola's start command holds on them: a session cannot see the pod's key, a pod not given a host
key gets a new one at every start, sshd needs PUBLIC_KEY, the volume sits at volumeMountPath, and a
pod whose watchdog cannot guard it is refused with the reason."""

from __future__ import annotations

import subprocess
import time

import pytest

from moola.core.errors import HostKeyMismatch, RemotePermanent
from moola.pods.api import PodLease, PodSpec, RunPodSDK
from moola.pods.fleet import guard_pod
from moola.remote.retry import call_with_retry
from moola.remote.ssh import SSHRunner
from tests.fakes.pod_image import make_image_python
from tests.fakes.runpod_emulator import IMAGE_PYTHON_AT, RunPodEmulator

KEY = "rp_container_key"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    root = tmp_path_factory.mktemp("pod-image")
    make_image_python(root, seen_at=IMAGE_PYTHON_AT)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "client")], check=True)
    return root


@pytest.fixture
def emu(image, tmp_path, tmp_path_factory, monkeypatch):
    api = RunPodEmulator(tmp_path / "pods", api_key=KEY, image=image, hide=[tmp_path_factory.getbasetemp()])
    monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
    yield api
    api.close()


def created(emu, image, **spec) -> tuple[PodLease, SSHRunner]:
    ls = PodLease(RunPodSDK(KEY), PodSpec(gpu_types=["NVIDIA H200"], client_public=(image / "client.pub").read_text(),
                                          **spec), poll=0.1)
    host, port = ls.acquire()
    return ls, SSHRunner(host, port, key=image / "client", host_key=ls.host_key, python="python", timeout=3)


def run(runner: SSHRunner, *argv) -> tuple[int, str]:
    client = call_with_retry(runner.connect, retry_for=20)
    try:
        return runner.execute(client, list(argv))
    finally:
        client.close()


def test_a_session_cannot_see_the_pods_key_which_pid_1_and_rp_environment_hold(emu, image, tmp_path_factory):
    ls, r = created(emu, image)
    code, out = run(r, "sh", "-c", 'echo "key=[$RUNPOD_API_KEY]"; tr "\\0" "\\n" < /proc/1/environ | '
                    'grep -c "^RUNPOD_API_KEY="; grep -c RUNPOD_API_KEY /etc/rp_environment; ls -A "$1"', "sh",
                    str(tmp_path_factory.getbasetemp()))
    assert code == 0 and out.splitlines()[:3] == ["key=[]", "1", "1"]
    assert out.splitlines()[3:] == []  # the orchestrator's folders (the tests' own) are not in the pod
    code, out = run(r, "python", "-c", "import sys; print(sys.executable); import pydantic")
    assert code != 0 and f"{IMAGE_PYTHON_AT}/image/bin/python" in out and "No module named 'pydantic'" in out
    ls.release()


def test_a_pod_not_given_a_host_key_gets_a_new_one_at_every_start(emu, image):
    """RunPod's image alone (no moola start command): the key changes across a stop and resume, the
    port too, and only the API's address is known: there is nothing to pin but what moola gives."""
    import paramiko
    api = RunPodSDK(KEY)
    pod = api.create_pod(name="plain", image_name="img", gpu_type_id="NVIDIA H200", cloud_type="SECURE",
                         gpu_count=1, volume_in_gb=5, container_disk_in_gb=10, ports="22/tcp",
                         env={"PUBLIC_KEY": (image / "client.pub").read_text().strip()}, docker_args="",
                         volume_mount_path="/workspace")

    def host_key():
        port = emu.pods[pod["id"]].port
        for _ in range(100):
            try:
                t = paramiko.Transport(("127.0.0.1", port))
                t.start_client(timeout=3)
                k = t.get_remote_server_key().get_base64()
                t.close()
                return port, k
            except (paramiko.SSHException, OSError):
                time.sleep(0.1)
        raise AssertionError("sshd never answered")
    first = host_key()
    (emu.pods[pod["id"]].root / "volume" / "kept").write_text("x")
    api.stop_pod(pod["id"])
    assert emu.billing() == [pod["id"]]  # stopped with a volume: still billed
    api.resume_pod(pod["id"], 1)
    second = host_key()
    assert first[1] != second[1] and first[0] != second[0]
    assert emu.pods[pod["id"]].path("/workspace/kept").read_text() == "x"  # the volume stayed
    api.terminate_pod(pod["id"])
    assert emu.billing() == [] and api.get_pod(pod["id"]) is None


def test_without_public_key_there_is_no_sshd(emu, image):
    api = RunPodSDK(KEY)
    pod = api.create_pod(name="nokey", image_name="img", gpu_type_id="NVIDIA H200", cloud_type="SECURE",
                         gpu_count=1, volume_in_gb=0, container_disk_in_gb=10, ports="22/tcp", env={}, docker_args="",
                         volume_mount_path="/workspace")
    time.sleep(1.5)
    assert "Setting up SSH" not in emu.log(pod["id"]) and "Pod Started" in emu.log(pod["id"])
    assert subprocess.run(["ssh-keyscan", "-p", str(emu.pods[pod["id"]].port), "127.0.0.1"],
                          capture_output=True, timeout=10).stdout == b""
    api.terminate_pod(pod["id"])


def test_the_pod_is_reached_with_its_given_key_and_an_impostor_key_is_refused(emu, image):
    ls, r = created(emu, image)
    code, out = run(r, "cat", "/etc/ssh/sshd_config.d/00-moola-hostkey.conf")
    assert code == 0 and out.strip() == "HostKey /etc/ssh/ssh_host_ed25519_key"
    from moola.pods.boot import new_identity
    r.host_key = new_identity().public  # what an impostor would need to match
    with pytest.raises(HostKeyMismatch, match="CHANGED"):
        r.connect()
    ls.release()


def test_a_pod_whose_watchdog_has_no_key_is_not_guarded_and_says_why(image, tmp_path, tmp_path_factory, monkeypatch):
    api = RunPodEmulator(tmp_path / "pods", api_key=KEY, image=image, hide=[tmp_path_factory.getbasetemp()],
                         pod_key=False)
    monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
    try:
        ls, r = created(api, image)
        with pytest.raises(RemotePermanent, match="is not guarded: its watchdog says RUNPOD_POD_ID and "
                                                  "RUNPOD_API_KEY not found"):
            call_with_retry(lambda: guard_pod(r, ls.pod_id, 60), retry_for=20)
        ls.release()
    finally:
        api.close()


def test_a_pod_held_without_the_worker_is_kept_by_its_heartbeats_and_ends_itself_after(emu, image):
    """The flow's own pod and `moola gate run --runner runpod` beat for their pod (PodHeartbeat): its
    watchdog leaves it alone while beats come, and terminates it once they stop."""
    from moola.pods.lease import PodHeartbeat
    ls, r = created(emu, image, idle_stop_s=4, boot_grace_s=4)
    call_with_retry(r.connect, retry_for=20).close()
    beats = PodHeartbeat(r, ls.pod_id, 4).start()
    time.sleep(9)  # twice the idle time and more
    assert ls.pod_id in emu.pods and not [o for o in emu.ops if o.startswith("terminate")]
    beats.stop()
    t_end = time.monotonic() + 15
    while ls.pod_id in emu.pods and time.monotonic() < t_end:
        time.sleep(0.2)
    assert ls.pod_id not in emu.pods and emu.by[-1] == ls.pod_id  # by its own key


def test_nothing_of_moola_reaches_a_worker_pod_but_what_moola_uploads(image, tmp_path, tmp_path_factory,
                                                                      monkeypatch, sample_dir):
    """The worker tests' pods (tests/flows/worker_rig.py) hide this checkout and the tests' folders:
    a gate that was handed a local path (an input not shipped) or run without the uploaded code on
    PYTHONPATH fails there, as it would on RunPod; with what moola ships, both are found."""
    import sys
    from pathlib import Path

    from tests.flows.conftest import ROOT
    api = RunPodEmulator(tmp_path / "pods", api_key=KEY, image=image,
                         hide=[tmp_path_factory.getbasetemp(), ROOT], keep=[Path(sys.prefix)])
    monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
    try:
        ls, r = created(api, image)
        local_data = sample_dir / "train.parquet"
        code, out = run(r, "sh", "-c", 'ls "$1" "$2"; cd /; python -c "import moola"', "sh", str(local_data),
                        str(ROOT / "moola" / "__init__.py"))
        assert code != 0 and out.count("No such file or directory") == 2 and "No module named 'moola'" in out
        client = call_with_retry(r.connect, retry_for=20)
        try:
            sftp = client.open_sftp()
            code_dir, shipped = r.ship_code(client, sftp), r.ship_input(client, sftp, local_data)
            code, out = r.execute(client, ["sh", "-c", 'cd / && ls "$1" && python -c "import moola; print(moola.__file__)"',
                                         "sh", shipped], env={"PYTHONPATH": str(code_dir)})
        finally:
            client.close()
        assert code == 0 and out.splitlines()[-1] == f"{code_dir}/moola/__init__.py", out
        ls.release()
    finally:
        api.close()

"""The pod's watchdog (moola/pods/watchdog.py) against the RunPod emulator's API, shortened
timings: it leaves a pod alone while heartbeats arrive, terminates it (with the pod's own key) when
they stop or never come, falls back to stop when the key may not terminate, stands down only on an
explicit keep-alive file, and finds the key where RunPod puts it (PID 1's environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from moola.pods.watchdog import pod_environment
from tests.fakes.runpod_emulator import Pod, RunPodEmulator


@pytest.fixture
def api(tmp_path):
    emu = RunPodEmulator(tmp_path / "pods")
    emu.pods["podw"] = Pod("podw", "moola-x", "img", "NVIDIA H200", {}, "", 0, "/runpod-volume", 30, "rp_pod_key",
                           tmp_path / "podw")
    yield emu
    emu.close()


def watchdog(api, heartbeat, idle=1.5, grace=None, key="rp_pod_key", status=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    if key:
        env.update(RUNPOD_API_KEY=key, RUNPOD_API_BASE_URL=api.url, RUNPOD_POD_ID="podw")
    argv = [sys.executable, "-m", "moola.pods.watchdog", "--heartbeat", str(heartbeat), "--idle-stop-s", str(idle),
            "--poll-s", "0.2"] + (["--boot-grace-s", str(grace)] if grace else []) + (
            ["--status", str(status)] if status else [])
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


def test_heartbeats_keep_the_pod_and_silence_terminates_it_with_the_pods_own_key(api, tmp_path):
    hb, status = tmp_path / "hb", tmp_path / "hb.guard"
    hb.touch()
    proc = watchdog(api, hb, status=status)
    try:
        for _ in range(10):  # 3 s of heartbeats, twice the idle time
            time.sleep(0.3)
            hb.touch()
        assert api.ops == [] and proc.poll() is None
        assert json.loads(status.read_text()) == {"pod_id": "podw", "pid": proc.pid, "idle_stop_s": 1.5,
                                                  "boot_grace_s": 1.5, "error": None}
        t_last = time.time()
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    assert api.ops == ["terminate podw"] and api.by == ["podw"] and "podw" not in api.pods
    assert 1.5 <= api.when("terminate podw") - t_last < 5
    out = proc.stdout.read()
    assert "no heartbeat for 2 s: ending pod podw" in out and "pod podw terminated" in out


def test_a_pod_nobody_ever_beats_for_terminates_after_its_boot_grace(api, tmp_path):
    t0 = time.time()
    proc = watchdog(api, tmp_path / "never", idle=30, grace=1.0)
    assert proc.wait(timeout=15) == 0
    assert api.ops == ["terminate podw"] and 1.0 <= api.when("terminate podw") - t0 < 6


def test_a_removed_heartbeat_is_silence_and_only_a_keep_file_stands_it_down(api, tmp_path):
    hb = tmp_path / "hb"
    hb.touch()
    proc = watchdog(api, hb, idle=1.0)
    time.sleep(0.4)
    hb.unlink()  # not a signal: the pod still terminates after idle_stop_s
    assert proc.wait(timeout=10) == 0 and api.ops == ["terminate podw"]
    hb2 = tmp_path / "hb2"
    hb2.touch()
    api.pods["podx"] = Pod("podx", "moola-y", "img", "NVIDIA H200", {}, "", 0, "/runpod-volume", 30, "rp_pod_key",
                           tmp_path / "podx")
    proc = watchdog(api, hb2, idle=30)
    time.sleep(0.4)
    (tmp_path / "hb2.keep").touch()  # keep_alive: the run ended and the pod stays on purpose
    assert proc.wait(timeout=10) == 0 and api.ops == ["terminate podw"]


def test_a_key_that_may_not_terminate_stops_the_pod_instead(api, tmp_path):
    api.pod_key_may_terminate = False
    proc = watchdog(api, tmp_path / "hb", idle=30, grace=0.5)
    assert proc.wait(timeout=15) == 0
    assert api.ops == ["stop podw"] and api.pods["podw"].status == "EXITED"
    assert "terminate refused" in proc.stdout.read()


def test_failing_api_calls_are_retried_until_one_works(api, tmp_path):
    api.fail_next = ["Something went wrong. Please try again later or contact support."] * 3
    proc = watchdog(api, tmp_path / "hb", idle=30, grace=0.5)
    assert proc.wait(timeout=20) == 0
    out = proc.stdout.read()
    assert api.fail_next == [] and api.ops[-1] in ("terminate podw", "stop podw") and "retrying" in out
    assert "rp_pod_key" not in out


def test_heartbeats_are_counted_by_change_not_by_the_wall_clock(api, tmp_path):
    """A pod's clock may be off (or jump): an mtime far in the past that keeps changing is a heartbeat."""
    hb = tmp_path / "hb"
    hb.touch()
    os.utime(hb, (1000, 1000))
    proc = watchdog(api, hb, idle=1.0)
    try:
        for i in range(8):  # 2.4 s of beats, each with a 1970 timestamp
            time.sleep(0.3)
            os.utime(hb, (1001 + i, 1001 + i))
        assert proc.poll() is None and api.ops == []
    finally:
        proc.kill()


def test_without_a_key_it_says_so_in_its_status_and_exits_2(api, tmp_path):
    status = tmp_path / "hb.guard"
    proc = watchdog(api, tmp_path / "hb", key=None, status=status)
    assert proc.wait(timeout=10) == 2
    got = json.loads(status.read_text())
    assert got["pid"] == proc.pid and "RUNPOD_API_KEY not found" in got["error"]


def test_the_key_is_found_in_pid_1s_environment_or_rp_environment(tmp_path, monkeypatch):
    """What an SSH session cannot see, the watchdog reads where RunPod puts it."""
    for k in ("RUNPOD_API_KEY", "RUNPOD_POD_ID", "RUNPOD_API_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    environ = tmp_path / "environ"
    environ.write_bytes(b"PATH=/usr/bin\0RUNPOD_POD_ID=pod9\0RUNPOD_API_KEY=k-from-pid1\0")
    rp = tmp_path / "rp_environment"
    rp.write_text('export RUNPOD_POD_ID="podZ"\nexport RUNPOD_API_BASE_URL="http://x"\n')
    assert pod_environment(str(environ), str(rp)) == {"RUNPOD_POD_ID": "pod9", "RUNPOD_API_KEY": "k-from-pid1",
                                                      "RUNPOD_API_BASE_URL": "http://x"}
    assert pod_environment(str(tmp_path / "none"), str(rp)) == {"RUNPOD_POD_ID": "podZ",
                                                                "RUNPOD_API_BASE_URL": "http://x"}

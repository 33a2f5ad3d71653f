"""The pod's watchdog (moola/remote/watchdog.py) against the fake RunPod API, shortened timings:
it leaves a pod alone while heartbeats arrive, stops it when they stop, and stands down when the
heartbeat file is removed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from moola.remote.watchdog import stale

from .fake_runpod_http import FakeRunPodHTTP


@pytest.fixture
def api():
    fake = FakeRunPodHTTP(api_key="rp_pod_key")
    fake.pods["podw"] = {"id": "podw", "desiredStatus": "RUNNING", "costPerHr": 3.99, "runtime": None}
    yield fake
    fake.close()


def watchdog(api, heartbeat, idle=1.5, key="rp_pod_key"):
    env = dict(os.environ, RUNPOD_API_KEY=key, RUNPOD_API_BASE_URL=api.url, RUNPOD_POD_ID="podw")
    return subprocess.Popen([sys.executable, "-m", "moola.remote.watchdog", "--heartbeat", str(heartbeat),
                             "--idle-stop-s", str(idle), "--poll-s", "0.2"], env=env, stdout=subprocess.PIPE,
                            text=True)


def test_heartbeats_keep_the_pod_and_silence_stops_it(api, tmp_path):
    hb = tmp_path / "hb"
    hb.touch()
    proc = watchdog(api, hb)
    try:
        for _ in range(10):  # 3 s of heartbeats, twice the idle time
            time.sleep(0.3)
            hb.touch()
        assert api.ops == [] and proc.poll() is None
        t_last = time.time()
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    assert api.ops == ["stop podw"] and api.pods["podw"]["desiredStatus"] == "EXITED"
    assert 1.5 <= api.when("stop podw") - t_last < 5
    assert "no heartbeat for 2 s: pod podw stopped" in proc.stdout.read()


def test_a_removed_heartbeat_means_stand_down(api, tmp_path):
    hb = tmp_path / "hb"
    hb.touch()
    proc = watchdog(api, hb, idle=30)
    time.sleep(0.5)
    hb.unlink()
    assert proc.wait(timeout=10) == 0 and api.ops == []


def test_a_failing_stop_is_retried_until_it_works(api, tmp_path):
    hb = tmp_path / "hb"
    hb.touch()
    api.api_key = "rotated"  # the pod's key is refused at first
    proc = watchdog(api, hb, idle=0.5)
    try:
        time.sleep(2.0)
        assert proc.poll() is None and api.ops == []
        api.api_key = "rp_pod_key"
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert api.ops == ["stop podw"]
    assert "rp_pod_key" not in proc.stdout.read()


def test_stale_is_a_pure_age_check(tmp_path):
    hb = tmp_path / "hb"
    hb.touch()
    now = os.stat(hb).st_mtime
    assert stale(str(hb), 10, now + 5) is False and stale(str(hb), 10, now + 11) is True
    assert stale(str(tmp_path / "gone"), 10, now) is None

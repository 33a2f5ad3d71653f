"""The RunPod lifecycle against a local fake of the API's responses (and the real loopback sshd)."""

from __future__ import annotations

import pytest
import requests
from runpod import error as rp_error

from moola.core.errors import RemotePermanent, RemoteUnavailable
from moola.gates.call import GateCall
from moola.gates.result import read_result
from moola.pods.api import PodLease, PodSpec, classify, ssh_endpoint
from moola.pods.lease import RunPodRunner
from tests.fakes.fake_runpod import NO_CAPACITY, FakeRunPod

PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGu2"


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def lease(api, clock=None, **kw) -> PodLease:
    clock = clock or Clock()
    return PodLease(api, PodSpec(gpu_types=["NVIDIA H100 80GB HBM3", "NVIDIA H200"], client_public=PUB),
                    sleep=clock.sleep, clock=clock, poll=5.0, **kw)


def test_create_falls_back_through_gpu_types_waits_for_ssh_and_terminates():
    api, clock = FakeRunPod(), Clock()
    ls = lease(api, clock)
    assert ls.acquire() == ("127.0.0.1", 22022)
    assert api.calls[:2] == ["create NVIDIA H100 80GB HBM3", "create NVIDIA H200"]
    assert ls.events[0] == "no capacity for NVIDIA H100 80GB HBM3"
    clock.t += 3600
    report = ls.release()
    assert report["stopped"] and report["ended"] == "terminated" and api.calls[-1] == f"terminate {ls.pod_id}"
    assert report["cost_usd"] == pytest.approx(3.99 * (3600 + 10) / 3600)


def test_resume_existing_pod():
    api = FakeRunPod(capacity=())
    ls = lease(api, pod_id="existing")
    assert ls.acquire() == ("127.0.0.1", 22022)
    assert "resume existing" in api.calls and not any(c.startswith("create") for c in api.calls)
    assert ls.release()["ended"] == "stopped" and api.calls[-1] == "stop existing"  # the user's own: kept


def test_keep_alive_leaves_the_pod_running():
    api = FakeRunPod()
    ls = lease(api, keep_alive=True)
    ls.acquire()
    assert ls.release()["stopped"] is False and not any(c.startswith(("stop", "terminate")) for c in api.calls)


def test_no_capacity_anywhere_is_transient():
    with pytest.raises(RemoteUnavailable, match="no capacity for any"):
        lease(FakeRunPod(capacity=())).acquire()


def test_pod_that_never_shows_ssh_is_transient_after_the_deadline():
    api = FakeRunPod(boot_polls=10_000)
    with pytest.raises(RemoteUnavailable, match="not reachable by SSH"):
        lease(api, wait_timeout=60).acquire()


def test_missing_pod_id_is_permanent():
    with pytest.raises(RemotePermanent, match="does not exist"):
        lease(FakeRunPod(), pod_id="nope").acquire()


def test_sdk_errors_are_classified():
    assert isinstance(classify(rp_error.QueryError(NO_CAPACITY)), RemoteUnavailable)
    assert isinstance(classify(rp_error.QueryError("There are not enough free GPUs on the host machine to start this pod")), RemoteUnavailable)
    assert isinstance(classify(rp_error.AuthenticationError("401 Unauthorized")), RemotePermanent)
    assert isinstance(classify(requests.ConnectionError("reset")), RemoteUnavailable)
    assert isinstance(classify(rp_error.QueryError("Something else entirely")), RemotePermanent)
    # as the real API words them: a bad key is a GraphQL error in an HTTP 200; its generic failure is transient
    assert "rejected the API key" in str(classify(rp_error.QueryError("Unauthorized")))
    assert isinstance(classify(rp_error.QueryError("Something went wrong. Please try again later or contact "
                                                   "support.")), RemoteUnavailable)


def test_ssh_endpoint_needs_the_public_port_22():
    assert ssh_endpoint({"runtime": None}) is None
    assert ssh_endpoint({"runtime": {"ports": [{"ip": "1.2.3.4", "isIpPublic": True, "privatePort": 8888,
                                                 "publicPort": 1}]}}) is None


def test_runpod_runner_end_to_end_stops_the_pod_even_on_failure(sshd, sample_dir, tmp_path):
    api = FakeRunPod(ssh_port=sshd.port)
    runner = RunPodRunner(lease(api), lambda host, port, key: sshd.runner(tmp_path / "w", port=port))
    out = runner.run_gate(GateCall("validate", sample_dir / "train.parquet", tmp_path / "o"))
    assert read_result(out).status == "passed" and api.calls[-1].startswith("terminate")
    api2 = FakeRunPod(ssh_port=sshd.port)
    broken = RunPodRunner(lease(api2), lambda host, port, key: sshd.runner(tmp_path / "w", port=port,
                                                                        key=tmp_path / "none"))
    with pytest.raises(RemotePermanent):
        broken.run_gate(GateCall("validate", sample_dir / "train.parquet", tmp_path / "o2"))
    assert api2.calls[-1].startswith("terminate")


def test_the_api_key_never_reaches_a_message():
    """Issue 10: older SDKs put `api_key=` in request URLs, which end up in exception text."""
    import requests

    from moola.pods.api import RunPodSDK, scrub
    key = "rpa_SECRET0123456789"
    url_error = requests.ConnectionError(f"HTTPSConnectionPool: /graphql?api_key={key}&x=1 (Caused by reset)")
    converted = classify(url_error, key)
    assert isinstance(converted, RemoteUnavailable) and key not in str(converted) and "api_key=***" in str(converted)
    assert key not in scrub(f"Authorization: Bearer {key}") and key not in scrub(f"oops {key}", key)

    sdk = RunPodSDK(key)

    def leaky(*a, **kw):
        raise KeyError(f"unexpected response for https://api.runpod.io/graphql?api_key={key}")
    with pytest.raises(RemotePermanent) as e:
        sdk._call(leaky)
    assert key not in str(e.value) and e.value.__cause__ is None and e.value.__suppress_context__


def test_the_lease_record_exists_while_the_pod_boots(tmp_path):
    """A process killed during a boot of minutes must still leave what stops the pod."""
    import json

    from moola.pods import lease as pods
    api, clock = FakeRunPod(boot_polls=3), Clock()
    record = tmp_path / "pods" / "run.json"
    seen = []

    def sleep(s):  # each poll of a booting pod: the record is already on disk
        seen.append(json.loads(record.read_text()) if record.exists() else None)
        clock.sleep(s)
    ls = PodLease(api, PodSpec(gpu_types=["NVIDIA H200"], client_public=PUB), sleep=sleep, clock=clock, poll=5.0)
    assert pods.acquire(ls, record, extra={"run_id": "r1"}) == ("127.0.0.1", 22022)
    assert seen and all(r is not None and r["pod_id"] == "pod-1" and r["run_id"] == "r1" for r in seen)
    assert json.loads(record.read_text())["cost_per_hr"] == 3.99  # rewritten with the price once up


def test_a_booting_pod_says_so_every_half_minute(caplog):
    """A boot takes minutes; the run's log said nothing between the create and the first gate."""
    import logging
    api, clock = FakeRunPod(boot_polls=14), Clock()  # 14 polls of 5 s: 70 s of booting
    with caplog.at_level(logging.INFO, logger="moola.pods"):
        lease(api, clock).acquire()
    lines = [r.getMessage() for r in caplog.records]
    booting = [x for x in lines if "still booting after" in x]
    assert len(booting) == 2 and "after 30 s (status" in booting[0] and "after 60 s (status" in booting[1], lines
    assert any(x.startswith("RunPod pod ") and " created (" in x for x in lines)
    assert any(" is up after 70 s (ssh " in x for x in lines), lines

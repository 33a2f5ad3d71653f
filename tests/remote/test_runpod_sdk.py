"""RunPodSDK (the real `runpod` package over HTTP) against a local fake of RunPod's GraphQL API:
request shapes, response parsing and the error classification at the boundary."""

from __future__ import annotations

import pytest

from moola.errors import RemotePermanent, RemoteUnavailable
from moola.remote.runpod import PodLease, PodSpec, RunPodSDK

from .fake_runpod_http import FakeRunPodHTTP


@pytest.fixture
def api(monkeypatch):
    fake = FakeRunPodHTTP()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)
    yield fake
    fake.close()


def lease(sdk, **kw) -> PodLease:
    return PodLease(sdk, PodSpec(gpu_types=["NVIDIA H100 80GB HBM3", "NVIDIA H200"]), poll=0.01, **kw)


def test_create_with_fallback_wait_for_ssh_stop_and_cost(api):
    ls = lease(RunPodSDK("rp_test_key"))
    assert ls.acquire() == ("127.0.0.1", 22022)
    assert api.ops == ["create NVIDIA H100 80GB HBM3", "create NVIDIA H200"]
    out = ls.release()
    assert out["stopped"] and out["pod_id"] == "pod1" and api.ops[-1] == "stop pod1"
    assert ls.cost_per_hr == 3.99 and api.pods["pod1"]["desiredStatus"] == "EXITED"


def test_resume_an_existing_pod(api):
    api.pods["abc"] = {"id": "abc", "desiredStatus": "EXITED", "costPerHr": 2.5, "runtime": None}
    ls = lease(RunPodSDK("rp_test_key"), pod_id="abc")
    assert ls.acquire() == ("127.0.0.1", 22022) and api.ops == ["resume abc"]
    ls.release()
    assert api.ops == ["resume abc", "stop abc"]


def test_a_missing_pod_is_permanent(api):
    with pytest.raises(RemotePermanent, match="RunPod pod gone .* does not exist"):
        lease(RunPodSDK("rp_test_key"), pod_id="gone").acquire()


def test_no_capacity_is_transient(api):
    api.capacity = set()
    with pytest.raises(RemoteUnavailable, match="no capacity for any of NVIDIA H100 80GB HBM3, NVIDIA H200"):
        lease(RunPodSDK("rp_test_key")).acquire()


def test_a_wrong_key_is_permanent_and_never_shown(api):
    with pytest.raises(RemotePermanent, match="RunPod rejected the API key") as err:
        lease(RunPodSDK("rp_wrong_key")).acquire()
    assert "rp_wrong_key" not in str(err.value)


def test_an_unknown_gpu_type_is_permanent(api):
    sdk = RunPodSDK("rp_test_key")
    ls = PodLease(sdk, PodSpec(gpu_types=["NVIDIA H100 80GB"]), poll=0.01)  # a typo of the real id
    with pytest.raises(RemotePermanent, match="NVIDIA H100 80GB"):
        ls.acquire()


def test_api_down_is_transient(api, monkeypatch):
    api.close()
    with pytest.raises(RemoteUnavailable, match="RunPod API unreachable"):
        lease(RunPodSDK("rp_test_key"), pod_id="abc").acquire()

"""The pods of one run (moola/remote/fleet.py) against the fake API: all or none, records, cost."""

from __future__ import annotations

import json

import pytest

from moola.errors import RemoteUnavailable
from moola.remote.fleet import Fleet, pods_usage, release_run, run_records
from moola.remote.runpod import PodSpec

from .fake_runpod import FakeRunPod

PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGu2"


def fleet(api, tmp_path, count=2, **kw) -> Fleet:
    return Fleet(api, PodSpec(gpu_types=["NVIDIA H100 80GB HBM3", "NVIDIA H200"], client_public=PUB), count,
                 tmp_path / "leases",
                 "run-1", deadline_s=0.0, poll_s=0.0, **kw)


def test_every_pod_or_none(tmp_path):
    api = FakeRunPod(boot_polls=0)
    real_create = api.create_pod

    def create_then_full(**kw):  # capacity for one pod only
        pod = real_create(**kw)
        api.capacity = set()
        return pod
    api.create_pod = create_then_full
    f = fleet(api, tmp_path)
    with pytest.raises(RemoteUnavailable, match="no capacity"):
        f.acquire()
    # the pod that was acquired is terminated (moola created it), and nothing is left recorded
    assert api.pods["pod-1"]["desiredStatus"] == "TERMINATED" and "terminate pod-1" in api.calls
    assert not list((tmp_path / "leases").glob("*.json"))


def test_handover_records_cost_and_release(tmp_path):
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path)
    assert f.acquire() == [("127.0.0.1", 22022), ("127.0.0.1", 22022)]
    handed = f.handover()
    assert [p["pod_id"] for p in handed] == ["pod-1", "pod-2"] and {p["gpu_type"] for p in handed} == {"NVIDIA H200"}
    assert set(run_records(tmp_path / "leases")) == {"run-1"} and len(run_records(tmp_path / "leases")["run-1"]) == 2
    now = handed[0]["started_wall"] + 3600
    assert f.cost_usd(now) == pytest.approx(2 * 3.99, rel=1e-3)
    assert [round(u["cost_usd"], 2) for u in pods_usage(handed, now)] == [3.99, 3.99]
    out = f.release()
    assert [r["stopped"] for r in out] == [True, True] and f.release() == out  # idempotent
    assert api.calls.count("terminate pod-1") == 1 and not list((tmp_path / "leases").glob("*.json"))


def test_release_from_records_alone(tmp_path):
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path, count=1)
    f.acquire()
    paths = run_records(tmp_path / "leases")["run-1"]
    assert json.loads(paths[0].read_text())["run_id"] == "run-1"
    out = release_run(api, PodSpec(gpu_types=["NVIDIA H200"]), paths)
    assert [r["pod_id"] for r in out] == ["pod-1"] and 0 <= out[0]["uptime_s"] < 60
    assert not list((tmp_path / "leases").glob("*.json"))


def test_a_pod_the_run_released_through_its_record_is_not_stopped_again_nor_heartbeaten(tmp_path, monkeypatch):
    import moola.remote.fleet as fleet_mod
    from moola.remote.fleet import release_handed
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path)
    f.acquire()
    f.heartbeats, f.make_ssh = ["hb-1", "hb-2"], lambda host, port, key: None
    touched = []
    monkeypatch.setattr(fleet_mod, "touch", lambda runner, path: touched.append(path))
    lost = f.handover()[1]  # the run found pod-2 lost and stopped it through its record
    got = release_handed(api, PodSpec(gpu_types=["NVIDIA H200"]), lost)
    assert got["pod_id"] == "pod-2" and got["stopped"]
    f.heartbeat()
    assert touched == ["hb-1"]
    out = f.release()
    # ended once, by the run; the worker's release reports it (from the run's receipt) with the other
    assert api.calls.count("terminate pod-2") == 1 and api.calls.count("terminate pod-1") == 1
    assert [(r["pod_id"], r.get("released_by")) for r in out] == [("pod-1", None), ("pod-2", "run")]
    assert out[1]["uptime_s"] == got["uptime_s"] and not list((tmp_path / "leases").iterdir())


def test_pods_are_acquired_side_by_side_not_one_boot_after_another(tmp_path):
    """A pod here answers SSH only once every pod of the run was created: acquired one after the
    other, the first would wait for a second that is never asked for (until the deadline)."""
    api = FakeRunPod(boot_polls=0)
    real_get = api.get_pod

    def get_pod(pod_id):
        pod = real_get(pod_id)
        if len(api.pods) < 1 + 3:  # "existing" + this run's three
            pod = {**pod, "runtime": None}
        return pod
    api.get_pod = get_pod
    f = Fleet(api, PodSpec(gpu_types=["NVIDIA H200"], client_public=PUB), 3, tmp_path / "leases", "run-1",
              deadline_s=3.0, poll_s=0.05)
    assert f.acquire() == [("127.0.0.1", 22022)] * 3
    assert sorted(p["pod_id"] for p in f.handover()) == ["pod-1", "pod-2", "pod-3"]
    f.release()

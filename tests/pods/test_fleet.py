"""The pods of one run (moola/pods/fleet.py) against the fake API: all or none, records, cost."""

from __future__ import annotations

import json

import pytest

from moola.core.errors import RemotePermanent, RemoteUnavailable
from moola.pods.api import PodSpec
from moola.pods.fleet import Fleet, pods_usage, release_run, run_records
from tests.fakes.fake_runpod import FakeRunPod

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
    assert sorted(p.pod_id for p in handed) == ["pod-1", "pod-2"] and {p.gpu_type for p in handed} == {"NVIDIA H200"}
    assert set(run_records(tmp_path / "leases")) == {"run-1"} and len(run_records(tmp_path / "leases")["run-1"]) == 2
    now = handed[0].started_wall + 3600
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
    import moola.pods.fleet as fleet_mod
    from moola.pods.fleet import release_handed
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path)
    f.acquire()
    f.heartbeats, f.make_ssh = ["hb-1", "hb-2"], lambda host, port, key: None
    touched = []
    monkeypatch.setattr(fleet_mod, "touch", lambda runner, path: touched.append(path))
    kept, lost = f.handover()  # the run found the second lost and ended it through its record
    got = release_handed(api, PodSpec(gpu_types=["NVIDIA H200"]), lost)
    assert got["pod_id"] == lost.pod_id and got["stopped"]
    f.heartbeat()
    assert touched == ["hb-1"]
    out = f.release()
    # ended once, by the run; the worker's release reports it (from the run's receipt) with the other
    assert api.calls.count("terminate pod-2") == 1 and api.calls.count("terminate pod-1") == 1
    assert [(r["pod_id"], r.get("released_by")) for r in out] == [(kept.pod_id, None), (lost.pod_id, "run")]
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
    assert sorted(p.pod_id for p in f.handover()) == ["pod-1", "pod-2", "pod-3"]
    f.release()


# -- faults (issue 23): every pod ended whatever happens to one -------------------------------------
def test_one_pod_that_cannot_be_ended_never_keeps_the_others_running(tmp_path):
    from moola.core.errors import RemotePermanent
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path, count=3)
    f.acquire()
    real = api.terminate_pod

    def terminate(pod_id):
        if pod_id == "pod-1":
            raise RemotePermanent("RunPod API error: You do not have permission to perform this action.")
        return real(pod_id)
    api.terminate_pod = terminate
    out = f.release()
    assert {r["pod_id"]: r["stopped"] for r in out} == {"pod-1": False, "pod-2": True, "pod-3": True}
    assert api.pods["pod-2"]["desiredStatus"] == api.pods["pod-3"]["desiredStatus"] == "TERMINATED"
    bad = next(i for i, ls in enumerate(f.leases) if ls.pod_id == "pod-1")
    assert [p.name for p in (tmp_path / "leases").glob("*.json")] == [f"run-1.{bad}.json"]  # kept for a later try
    api.terminate_pod = real
    again = f.release()  # a later release ends it, and replaces the failed entry
    assert sorted((r["pod_id"], r["stopped"]) for r in again) == [("pod-1", True), ("pod-2", True), ("pod-3", True)]


def test_a_pod_terminated_in_the_console_counts_as_ended(tmp_path):
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path, count=2)
    f.acquire()
    api.terminate_pod("pod-1")  # by hand, in the console
    out = {r["pod_id"]: r for r in f.release()}
    assert out["pod-1"]["stopped"] and out["pod-1"]["ended"] == "gone" and out["pod-2"]["ended"] == "terminated"
    assert not list((tmp_path / "leases").glob("*.json"))


def test_a_lease_record_that_cannot_be_written_does_not_leave_the_pod_running(tmp_path):
    api = FakeRunPod(boot_polls=0)
    (tmp_path / "leases").write_text("a file where the folder should be")  # mkdir fails: like a read-only disk
    f = fleet(api, tmp_path, count=2)
    f.acquire()
    out = f.release()
    assert [r["stopped"] for r in out] == [True, True]
    assert {api.pods[p]["desiredStatus"] for p in ("pod-1", "pod-2")} == {"TERMINATED"}


def test_a_bad_record_first_does_not_stop_the_release_of_the_others(tmp_path):
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path, count=2)
    f.acquire()
    recs = tmp_path / "leases"
    (recs / "aaa.json").write_text("{not json")
    (recs / "aab.json").write_text(json.dumps({"pod_id": "pod-x", "run_id": "run-1", "created": True}))
    got = release_run(api, PodSpec(gpu_types=["NVIDIA H200"]), sorted(recs.glob("*.json")))
    assert sorted((r["pod_id"], r["ended"]) for r in got) == [("pod-1", "terminated"), ("pod-2", "terminated"),
                                                              ("pod-x", "gone")]  # not found: already gone


def test_a_lost_create_answer_adopts_the_pod_it_made_and_creates_no_second(tmp_path):
    """RunPod accepted the create, the answer never arrived (a read timeout): the pod is found by its
    name (written in the lease record before the request) instead of created again."""
    api = FakeRunPod(boot_polls=0)
    real = api.create_pod
    lost = [1]

    def create(**kw):
        pod = real(**kw)
        if lost[0]:
            lost[0] -= 1
            raise RemoteUnavailable("RunPod API unreachable: ReadTimeout: read timed out")
        return pod
    api.create_pod = create
    f = fleet(api, tmp_path, count=1)
    f.acquire()
    assert [c for c in api.calls if c.startswith("create")] == ["create NVIDIA H100 80GB HBM3", "create NVIDIA H200"]
    assert f.handover()[0].pod_id == "pod-1" and len(api.pods) == 2  # "existing" + the one pod
    assert json.loads(f.record(0).read_text())["name"] == f.leases[0].name and f.leases[0].name.startswith("moola-")
    f.release()
    assert api.pods["pod-1"]["desiredStatus"] == "TERMINATED"


def test_a_pod_the_run_already_ended_counts_its_final_cost_not_its_time_since(tmp_path):
    """The budget summed every lease's uptime until now, a pod the run had ended mid-run included:
    a run that lost a pod early could pass max_usd for nothing."""
    import time

    from moola.pods.fleet import release_handed
    api = FakeRunPod(boot_polls=0)
    f = fleet(api, tmp_path)
    f.acquire()
    for ls in f.leases:
        ls.cost_per_hr, ls.started_wall = 3600.0, time.time() - 10  # $1 a second, up 10 s
    kept, lost = f.handover()
    got = release_handed(api, PodSpec(gpu_types=["NVIDIA H200"]), lost)
    later = time.time() + 100
    assert f.cost_usd(later) == pytest.approx(110 + got["cost_usd"], abs=0.5)  # not 110 + 110
    out = f.release()
    assert f.cost_usd(later + 100) == pytest.approx(sum(r["cost_usd"] for r in out), abs=0.5)


def test_the_budget_holds_while_acquiring_not_only_once_the_run_started(tmp_path):
    """Capacity for one pod of two: the first pod ran (billed, not yet guarded) while the second
    waited for capacity until the deadline (30 minutes by default). Now the budget ends the wait."""
    import time
    api = FakeRunPod(boot_polls=0)
    real_create = api.create_pod

    def create_then_full(**kw):
        pod = real_create(**kw)
        pod["costPerHr"] = 3600.0  # $1 a second
        api.capacity = set()
        return pod
    api.create_pod = create_then_full
    f = fleet(api, tmp_path, max_usd=1.5)
    f.deadline_s = 120
    t0 = time.monotonic()
    with pytest.raises(RemotePermanent, match=r"budget: \$.* passed max_usd \$1.5000"):
        f.acquire()
    assert time.monotonic() - t0 < 20  # not the 120 s deadline
    assert api.pods["pod-1"]["desiredStatus"] == "TERMINATED" and not list((tmp_path / "leases").glob("*.json"))


def test_a_hung_pod_delays_neither_the_other_pods_heartbeats_nor_the_caller_past_its_timeout(tmp_path):
    """Heartbeats went one pod after another over ssh with no timeout: a pod whose sshd hangs (a
    stuck machine: TCP still accepts, nothing answers) held up the other pods' beats and, in the
    worker, the budget, cancellation and process-exit checks behind them. Two real sshds here, the
    first frozen (SIGSTOP)."""
    import os
    import signal
    import time
    from types import SimpleNamespace

    from tests.fakes.sshd_server import make_sshd
    servers = []
    for name in ("hung", "fine"):
        (tmp_path / name).mkdir()
        servers.append(make_sshd(tmp_path / name))
        servers[-1].start()
    hung, fine = servers
    f = Fleet(None, PodSpec(gpu_types=["NVIDIA H200"]), 2, tmp_path / "leases", "run-1")
    f.leases = [SimpleNamespace(pod_id=f"pod-{s.port}", host_key=None) for s in servers]
    f.endpoints = [("127.0.0.1", s.port) for s in servers]
    f.records.mkdir()
    for i in range(2):
        f.record(i).write_text("{}")
    f.heartbeats = [str(tmp_path / "hb-hung"), str(tmp_path / "hb-fine")]
    f.make_ssh = lambda host, port, key: next(s for s in servers if s.port == port).runner(tmp_path / "w", timeout=2.0)
    os.kill(hung.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        f.heartbeat()
        took = time.monotonic() - t0
    finally:
        os.kill(hung.proc.pid, signal.SIGCONT)
        for s in servers:
            s.stop()
    assert (tmp_path / "hb-fine").exists() and not (tmp_path / "hb-hung").exists()
    assert took < 10, took  # the hung pod's connect gave up after its 2 s timeout; nothing waited on it


def test_a_verified_watchdog_is_written_into_the_lease_record(tmp_path, caplog):
    """A restarted worker tells guarded pods (left to their watchdog) from never-guarded ones
    (ended: nothing else would) by this field; a record that cannot be rewritten costs only that."""
    import json

    from moola.pods.lease import mark_guarded
    rec = tmp_path / "run.0.json"
    rec.write_text(json.dumps({"pod_id": "p1", "run_id": "r", "owner": {"pid": 1}}))
    mark_guarded(rec)
    assert json.loads(rec.read_text()) == {"pod_id": "p1", "run_id": "r", "owner": {"pid": 1}, "guarded": True}
    mark_guarded(tmp_path / "gone.json")  # no record (the run already ended the pod): a warning, no error
    assert "cannot mark" in caplog.text


def test_a_runs_pod_record_has_final_costs_for_pods_it_ended_and_running_costs_for_the_rest():
    from moola.pods.fleet import Pod, run_pods_record
    held = [Pod(pod_id="p1", host="h", port=1, cost_per_hr=3.6, started_wall=1000.0),
            Pod(pod_id="p2", host="h", port=2, cost_per_hr=3.6, started_wall=1000.0)]
    rec = run_pods_record(held, {"p2": {"uptime_s": 100.04, "cost_usd": 0.1}}, {"p2": "RunPod reports it EXITED"},
                          {"p1": ["baseline", "augment"], "p2": []}.get, now=1000.0 + 3600)
    assert [(r["pod_id"], r["uptime_s"], r["cost_usd"], r["units"], r["lost"]) for r in rec] == [
        ("p1", 3600.0, 3.6, ["baseline", "augment"], None), ("p2", 100.0, 0.1, [], "RunPod reports it EXITED")]

"""The README's "Run it for real" path, step by step, against a real `prefect server start`:
work pool, `prefect deploy`, `prefect deployment run gates/full`, a process worker with --run-once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.flows.conftest import CONFIG, jsonl

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect_real_home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_UI_ENABLED="false")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("prefect server did not start:\n" + (home / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield env
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def prefect(env, *args, timeout=120) -> str:
    r = subprocess.run([PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"prefect {' '.join(args)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def client_call(env, fn):
    """Run ``fn(client)`` against the real server (not the session's test harness)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            return fn(client)


def test_deploy_run_and_a_worker_reach_the_decision(server, sample_dir, tmp_path):
    env = server
    prefect(env, "work-pool", "create", "runpod", "--type", "process")
    prefect(env, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")

    full = client_call(env, lambda c: c.read_deployment_by_name("gates/full"))
    revalidate = client_call(env, lambda c: c.read_deployment_by_name("gates/revalidate"))
    for d, cron in ((full, "0 2 * * *"), (revalidate, "30 3 * * *")):
        assert d.work_pool_name == "runpod"
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules] == [
            (cron, "America/New_York", True)]
        assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
    assert full.entrypoint == "flows/gates.py:gates" and revalidate.entrypoint == "flows/revalidate.py:revalidate"
    assert full.global_concurrency_limit.limit == 1

    art = tmp_path / "art"
    params = {"data": str(sample_dir / "train.parquet"), "unlabeled": str(sample_dir / "unlabeled.parquet"),
              "config": CONFIG, "artifacts": str(art), "runner": "local"}
    prefect(env, "deployment", "run", "gates/full", "--params", json.dumps(params))
    out = prefect(env, "worker", "start", "--pool", "runpod", "--run-once", timeout=420)

    runs = client_call(env, lambda c: c.read_flow_runs())
    top = [r for r in runs if r.deployment_id == full.id and not r.auto_scheduled]  # not the nightly ones
    assert len(top) == 1 and top[0].state.is_final(), out[-3000:]
    state = top[0].state
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]["decision"]
    gates = {x["gate"] for x in jsonl(art) if x["kind"] == "gate_result"}
    assert gates == {"validate", "baseline", "minirocket", "pretrain", "transfer", "augment"}
    # the final state is the one the decision dictates, with its reasons
    if decision["action"] in ("blocked", "investigate"):
        assert state.is_failed() and state.message == f"{decision['action']}: " + "; ".join(decision["reasons"])
    else:
        assert state.is_completed()
    registry = json.loads((art / "registry.json").read_text()) if (art / "registry.json").exists() else None
    if decision["action"] == "ship":
        assert registry["production"]["name"] == decision["candidate"]
    else:
        assert registry is None and decision["production_after"] is None

    # the nightly re-validation deployment runs through the same worker
    prefect(env, "deployment", "run", "gates/revalidate", "--params",
            json.dumps({"data": params["data"], "artifacts": str(art)}))
    prefect(env, "worker", "start", "--pool", "runpod", "--run-once", timeout=300)
    runs = client_call(env, lambda c: c.read_flow_runs())
    reval = [r for r in runs if r.deployment_id == revalidate.id and not r.auto_scheduled]
    assert len(reval) == 1 and reval[0].state.is_completed() and reval[0].name == "revalidate"
    if registry is None:  # nothing in production: nothing to re-validate, nothing written
        assert not [x for x in jsonl(art) if x["kind"] == "revalidation"]
    else:
        assert [x for x in jsonl(art) if x["kind"] == "revalidation"][-1]["revalidation"]["action"] == "keep"

    # the server's scheduler queues the nightly runs of both deployments (it loops every ~60 s)
    deadline = time.monotonic() + 120
    while True:
        nightly = [r for r in client_call(env, lambda c: c.read_flow_runs()) if r.auto_scheduled]
        if {r.deployment_id for r in nightly} == {full.id, revalidate.id} or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {r.deployment_id for r in nightly} == {full.id, revalidate.id}
    new_york = ZoneInfo("America/New_York")
    for r in nightly:
        local = r.expected_start_time.astimezone(new_york)
        assert r.state.is_scheduled() and (local.hour, local.minute) == ((2, 0) if r.deployment_id == full.id else (3, 30))

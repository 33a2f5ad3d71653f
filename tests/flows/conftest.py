"""Prefect servers shared by the flow tests: the in-process test harness (``prefect_server``) and
one real `prefect server start` (``server``) for the tests that deploy and run workers. Starting
either costs ~10-20 s, so each starts once per session."""

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

import pytest

CONFIG = str(Path(__file__).resolve().parents[1] / "flows_test_config.json")
ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


# What the sample data (tests/conftest.py: seed 17, 98 labelled windows) leads to under CONFIG without
# unlabelled data (gates 3-4 skipped): training is seeded, so the decision is known. A change to the
# training, the data or the decision rule that changes it fails the end-to-end tests that assert it.
EXPECTED_WITHOUT_UNLABELED = {"action": "ship", "candidate": "augment", "pooled_f1": 0.688}


def assert_expected_decision(decision: dict, expected: dict = EXPECTED_WITHOUT_UNLABELED, f1_tol: float = 0.02):
    """The decision and its candidate exactly; the candidate's pooled F1 (the figure the reasons give)
    within ``f1_tol`` (about one of its 60 windows), so a change of BLAS or CPU does not fail it."""
    import re
    assert (decision["action"], decision["candidate"]) == (expected["action"], expected["candidate"]), \
        decision["reasons"]
    f1 = re.search(rf"{expected['candidate']} is healthy \(pooled F1 ([0-9.]+)\)", "; ".join(decision["reasons"]))
    assert f1 and abs(float(f1.group(1)) - expected["pooled_f1"]) <= f1_tol, decision["reasons"]


def jsonl(root: Path) -> list[dict]:
    p = root / "experiment_results.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[dict, subprocess.Popen]:
    """A real `prefect server start` on a loopback port (also used by bench/pod.py): the environment
    that points at it, and its process (a session leader: stop it with stop_server)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_UI_ENABLED="false",
               # the scheduler queues a new deployment's runs within seconds, not after its 60 s loop
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    return env, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("prefect server did not start:\n" + (home / "server.log").read_text()[-3000:])
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real `prefect server start`; yields the environment that points at it."""
    try:
        env, proc = start_server(tmp_path_factory.mktemp("prefect_real_home"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield env
    stop_server(proc)


def prefect(env, *args, timeout=120) -> str:
    r = subprocess.run([PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"prefect {' '.join(args)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


_deployed: dict[str, dict[str, list[tuple]]] = {}  # API URL -> the schedules `prefect deploy` made
DEPLOYMENTS = ("gates/full", "gates/revalidate")


def deploy(env) -> dict[str, list[tuple]]:
    """README's steps: the `runpod` work pool (moola's worker type) and `prefect deploy --all`; once per
    server (each `prefect` command costs seconds on a 2-core machine). Returns the schedules as deployed
    ({deployment: [(cron, timezone, active)]}); on the test server they are then switched off (and what
    they queued removed): a suite running across 02:00 New York time would otherwise get a scheduled
    gates/full run, with the runpod runner, among its own."""
    if env["PREFECT_API_URL"] in _deployed:
        return _deployed[env["PREFECT_API_URL"]]
    prefect(env, "work-pool", "create", "runpod", "--type", "runpod", "--overwrite")
    prefect(env, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
    made = client_call(env, lambda c: {name: [(s.schedule.cron, s.schedule.timezone, s.active) for s in
                                              c.read_deployment_by_name(name).schedules] for name in DEPLOYMENTS})
    schedules(env, active=False)
    _deployed[env["PREFECT_API_URL"]] = made
    return made


def forget_deployed(env) -> None:
    """After a test removed the deployments: the next deploy() makes them again."""
    _deployed.pop(env["PREFECT_API_URL"], None)


def schedules(env, active: bool) -> None:
    """Switch the deployments' schedules on or off; off also removes the runs they queued."""
    def switch(c):
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        for name in DEPLOYMENTS:
            dep = c.read_deployment_by_name(name)
            for sched in dep.schedules:
                c.update_deployment_schedule(dep.id, sched.id, active=active)
        if not active:
            for run in c.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])))):
                if run.auto_scheduled:  # the schedules' runs, not a test's
                    c.delete_flow_run(run.id)
    client_call(env, switch)


def client_call(env, fn):
    """Run ``fn(client)`` against the real server (not the session's test harness)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            return fn(client)

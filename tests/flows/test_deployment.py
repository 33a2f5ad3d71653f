"""The README's "Run it for real" path, step by step, against a real `prefect server start`:
work pool of type `runpod`, `prefect deploy`, `prefect deployment run gates/full`, a `runpod` worker with
--run-once."""

from __future__ import annotations

import json
import time
from zoneinfo import ZoneInfo

from tests.flows.conftest import (
    CONFIG,
    ROOT,
    assert_expected_decision,
    client_call,
    deploy,
    forget_deployed,
    jsonl,
    prefect,
    schedules,
)


def test_deploy_run_and_a_worker_reach_the_decision(server, sample_dir, tmp_path):
    env = server
    deployed = deploy(env)  # the work pool of moola's `runpod` worker type, and both deployments

    full = client_call(env, lambda c: c.read_deployment_by_name("gates/full"))
    revalidate = client_call(env, lambda c: c.read_deployment_by_name("gates/revalidate"))
    for d, name, cron in ((full, "gates/full", "0 2 * * *"), (revalidate, "gates/revalidate", "30 3 * * *")):
        assert d.work_pool_name == "runpod"
        assert deployed[name] == [(cron, "America/New_York", True)]  # as deployed (then off on this server)
        assert [(s.schedule.cron, s.active) for s in d.schedules] == [(cron, False)]
        assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
    assert full.entrypoint == "flows/gates.py:gates" and revalidate.entrypoint == "flows/revalidate.py:revalidate"
    assert full.global_concurrency_limit.limit == 1
    # the UI's run form (issue 26): every parameter described, the runner and the preset as choices,
    # as the server holds them
    for d in (full, revalidate):
        props = d.parameter_openapi_schema["properties"]
        assert all(p.get("description") for p in props.values()), [k for k, p in props.items() if not p.get("description")]
    props = full.parameter_openapi_schema["properties"]
    assert props["runner"]["enum"] == ["here", "local", "ssh", "runpod"] and props["runner"]["default"] == "here"
    assert props["preset"]["enum"] == ["default", "seed-smoke"]
    # the pool is of moola's worker type; its template carries the pod's variables, the deployment sets them
    pool = client_call(env, lambda c: c.read_work_pool("runpod"))
    variables = pool.base_job_template["variables"]["properties"]
    assert pool.type == "runpod" and {"gpu_types", "cloud_type", "pod_image", "volume_gb", "pods", "pod_deadline_s",
                                      "max_usd", "idle_stop_s", "keep_alive", "api_key_secret"} <= set(variables)
    assert not [v for v in variables if "key" in v and v != "api_key_secret"]  # never the key itself
    assert full.job_variables["gpu_types"] == ["NVIDIA H100 80GB HBM3", "NVIDIA H200"]
    assert (full.job_variables["max_usd"], full.job_variables["pods"]) == (5, 1) and revalidate.job_variables == {}

    art = tmp_path / "art"
    # no unlabelled data (gates 3-4 skipped, still recorded): the path under test is the deployment's,
    # and pretraining runs end to end in tests/flows/test_ssh_flow.py and test_gates_flow.py
    params = {"data": str(sample_dir / "train.parquet"), "unlabeled": None,
              "config": CONFIG, "artifacts": str(art), "runner": "local"}
    prefect(env, "deployment", "run", "gates/full", "--params", json.dumps(params))
    # a run whose runner is not `runpod` gets no pod from the `runpod` worker: no API key needed
    out = prefect(env, "worker", "start", "--pool", "runpod", "--type", "runpod", "--run-once", timeout=420)

    runs = client_call(env, lambda c: c.read_flow_runs())
    # this test's run: not the nightly ones, nor other tests' runs on the session's server
    top = [r for r in runs if r.deployment_id == full.id and (r.parameters or {}).get("artifacts") == str(art)]
    assert len(top) == 1 and top[0].state.is_final(), out[-3000:]
    state = top[0].state
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]["decision"]
    gates = {x["gate"] for x in jsonl(art) if x["kind"] == "gate_result"}
    assert gates == {"validate", "baseline", "minirocket", "pretrain", "transfer", "augment"}
    # seeded data and training: the decision is known, and the run's state and the registry say it
    assert_expected_decision(decision)
    assert state.is_completed() and state.name == "Shipped"
    registry = json.loads((art / "registry.json").read_text())
    assert registry["production"]["name"] == decision["candidate"]

    # the nightly re-validation deployment runs through the same worker
    prefect(env, "deployment", "run", "gates/revalidate", "--params",
            json.dumps({"data": params["data"], "artifacts": str(art)}))
    prefect(env, "worker", "start", "--pool", "runpod", "--type", "runpod", "--run-once", timeout=300)
    runs = client_call(env, lambda c: c.read_flow_runs())
    reval = [r for r in runs if r.deployment_id == revalidate.id and (r.parameters or {}).get("artifacts") == str(art)]
    assert len(reval) == 1 and reval[0].state.is_completed() and reval[0].name == "revalidate"
    assert [x for x in jsonl(art) if x["kind"] == "revalidation"][-1]["revalidation"]["action"] == "healthy"

    # the server's scheduler queues the nightly runs of both deployments (its loop: 5 s on this server),
    # once their schedules are on (the test server keeps them off, see deploy)
    schedules(env, active=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            nightly = [r for r in client_call(env, lambda c: c.read_flow_runs()) if r.auto_scheduled]
            if {r.deployment_id for r in nightly} == {full.id, revalidate.id} or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        schedules(env, active=False)
    assert {r.deployment_id for r in nightly} == {full.id, revalidate.id}
    new_york = ZoneInfo("America/New_York")
    for r in nightly:
        local = r.expected_start_time.astimezone(new_york)
        assert r.state.is_scheduled() and (local.hour, local.minute) == ((2, 0) if r.deployment_id == full.id else (3, 30))

    # README "Cleanup": the deployments and the work pool go (deploy() makes them again for later tests)
    for args in (("deployment", "delete", "gates/full"), ("deployment", "delete", "gates/revalidate"),
                 ("work-pool", "delete", "runpod")):
        prefect(env, "--no-prompt", *args)
    assert client_call(env, lambda c: [d.name for d in c.read_deployments()]) == []
    assert "runpod" not in client_call(env, lambda c: [p.name for p in c.read_work_pools()])
    forget_deployed(env)

"""One RunPod pod per `gates` flow run: acquired once (retried while there is no capacity),
shared by every gate, and stopped on every exit path: the flow's ``finally`` and, for the paths
that skip it (crash, cancellation from the UI), the state hooks.

The lease is written to ``<artifacts>/pods/<flow run id>.json`` so a hook running in another
process (a worker handling a cancellation) can still find and stop the pod.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import task

from flows.tasks import moola_logs_in_task, run_logger
from moola.atomic import write_json_atomic
from moola.remote.retry import call_with_retry
from moola.remote.runpod import PodAPI, PodLease, make_lease, pod_spec, sdk_from_settings
from moola.settings import Settings


STOP_ATTEMPTS, STOP_RETRY_S = 3, 5.0


def make_api(settings: Settings) -> PodAPI | None:
    """The RunPod API (None: the real SDK, from the settings). Tests swap this for a fake."""
    return None


def lease_file(artifacts: str, flow_run_id) -> Path:
    return Path(artifacts) / "pods" / f"{flow_run_id}.json"


@task(task_run_name="acquire pod")
def acquire_pod(artifacts: str, flow_run_id: str, deadline_s: float = 1800) -> list:
    """Resume or create the pod and wait for its SSH port; returns [host, port].

    Transient failures (no capacity for any GPU type, pod not up yet) are retried with capped
    backoff and jitter until ``deadline_s`` (checked between attempts; one attempt waits at most
    RUNPOD_WAIT_TIMEOUT); a pod created by a failed attempt is reused, never created twice.
    """
    s = Settings()
    lease = make_lease(s, make_api(s))
    try:
        with moola_logs_in_task():
            host, port = call_with_retry(lease.acquire, retry_for=deadline_s)
    finally:
        if lease.pod_id:  # written even when waiting failed: the pod may exist and cost money
            path = lease_file(artifacts, flow_run_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, lease.record())
    run_logger().info("pod %s: ssh %s:%d (%s)", lease.pod_id, host, port, "; ".join(lease.events))
    return [host, port]


def release_pod(artifacts: str, flow_run_id) -> dict | None:
    """Stop the pod this flow run leased, once; idempotent (the lease file goes when stopped)."""
    path = lease_file(artifacts, flow_run_id)
    if not path.is_file():
        return None
    s = Settings()
    record = json.loads(path.read_text())
    api = make_api(s)
    lease = PodLease.from_record(api if api is not None else sdk_from_settings(s), pod_spec(s), record)
    for attempt in range(STOP_ATTEMPTS):  # a pod left running costs money: try a few times
        out = lease.release()
        if out["stopped"] or lease.keep_alive:
            path.unlink(missing_ok=True)
            break
        time.sleep(STOP_RETRY_S)
    logger = run_logger()
    if out["stopped"] or lease.keep_alive:
        logger.info("pod %s released: up %.0f s, $%.4f%s", out["pod_id"], out["uptime_s"], out["cost_usd"],
                    "" if out["stopped"] else " (left running: RUNPOD_KEEP_ALIVE)")
    else:  # the lease file stays, so the failure hook or the next release tries again
        logger.error("pod %s could NOT be stopped after %d attempts: stop it in the RunPod console "
                     "(up %.0f s so far, $%.2f/h)", out["pod_id"], STOP_ATTEMPTS, out["uptime_s"], lease.cost_per_hr)
    return out


def stop_pod_hook(flow, flow_run, state) -> None:
    """on_failure / on_crashed / on_cancellation: stop the run's pod if the flow could not."""
    params = flow_run.parameters or {}
    if params.get("runner") == "runpod":
        from moola.settings import registry_from_settings
        release_pod(str(registry_from_settings(root=params.get("artifacts")).root), flow_run.id)

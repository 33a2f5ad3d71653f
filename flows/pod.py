"""One RunPod pod per `gates` flow run: acquired once (retried while there is no capacity),
shared by every gate, and stopped on every exit path: the flow's ``finally`` and, for the paths
that skip it (crash, cancellation from the UI), the state hooks.

The lease is written to ``<artifacts>/pods/<flow run id>.json`` so a hook running in another
process (a worker handling a cancellation) can still find and stop the pod.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from flows.tasks import moola_logs_in_task, run_logger
from moola.remote import pods
from moola.remote.pods import STOP_ATTEMPTS, STOP_RETRY_S  # noqa: F401  (tests shorten the retry)
from moola.remote.runpod import PodAPI, make_lease, pod_spec, sdk_from_settings
from moola.settings import Settings


def make_api(settings: Settings) -> PodAPI | None:
    """The RunPod API (None: the real SDK, from the settings). Tests swap this for a fake."""
    return None


def lease_file(artifacts: str, flow_run_id) -> Path:
    return Path(artifacts) / "pods" / f"{flow_run_id}.json"


@task(task_run_name="acquire pod")
def acquire_pod(artifacts: str, flow_run_id: str, deadline_s: float = 1800) -> list:
    """Resume or create the pod and wait for its SSH port (moola.remote.pods); returns [host, port]."""
    s = Settings()
    lease = make_lease(s, make_api(s))
    with moola_logs_in_task():
        host, port = pods.acquire(lease, lease_file(artifacts, flow_run_id), deadline_s)
    run_logger().info("pod %s: ssh %s:%d (%s)", lease.pod_id, host, port, "; ".join(lease.events))
    return [host, port]


def release_pod(artifacts: str, flow_run_id) -> dict | None:
    """Stop the pod this flow run leased, once; idempotent (the lease file goes when stopped)."""
    path = lease_file(artifacts, flow_run_id)
    if not path.is_file():
        return None
    s = Settings()
    api = make_api(s)
    with moola_logs_in_task():
        return pods.release_recorded(api if api is not None else sdk_from_settings(s), pod_spec(s), path,
                                     STOP_ATTEMPTS, STOP_RETRY_S)


def stop_pod_hook(flow, flow_run, state) -> None:
    """on_failure / on_crashed / on_cancellation: stop the run's pod if the flow could not."""
    params = flow_run.parameters or {}
    if params.get("runner") == "runpod":
        from moola.settings import registry_from_settings
        release_pod(str(registry_from_settings(root=params.get("artifacts")).root), flow_run.id)

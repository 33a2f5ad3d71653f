"""The pods of a `gates` flow run, and the pod's environment made ready before the first gate.

Under the `runpod` worker type (flows/worker.py) the worker owns the pods: it acquires them before
the flow starts, hands them over in the environment (``MOOLA_PODS``) and stops them when the flow's
process exits, however it exits. Without the worker (``python -m flows.gates --runner runpod``)
the flow leases one pod itself: acquired once (retried while there is no capacity), shared by every
gate, and stopped on every exit path: the flow's ``finally`` and, for the paths that skip it
(crash, cancellation from the UI), the state hooks. That lease is written to
``<artifacts>/pods/<flow run id>.json`` so a hook running in another process can still stop it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from prefect import task

from flows.tasks import moola_logs_in_task, run_logger
from moola.remote import pods
from moola.remote.fleet import HANDOVER_ENV
from moola.remote.pods import POD_DEADLINE_S, STOP_ATTEMPTS, STOP_RETRY_S  # noqa: F401  (tests shorten the retry)
from moola.remote.podenv import ensure_env
from moola.remote.runner import make_runner
from moola.remote.runpod import PodAPI, make_lease, pod_spec, sdk_from_settings
from moola.settings import Settings, load_settings


def make_api(settings: Settings) -> PodAPI | None:
    """The RunPod API (None: the real SDK, from the settings). Tests swap this for a fake."""
    return None


def lease_file(artifacts: str, flow_run_id) -> Path:
    return Path(artifacts) / "pods" / f"{flow_run_id}.json"


def worker_pods() -> list[dict] | None:
    """The pods the `runpod` worker acquired for this run (``MOOLA_PODS``), or None without one."""
    raw = os.environ.get(HANDOVER_ENV)
    return json.loads(raw) if raw else None


@task(task_run_name="acquire pod")
def acquire_pod(artifacts: str, flow_run_id: str, deadline_s: float = POD_DEADLINE_S) -> dict:
    """Resume or create the pod and wait for its SSH port (moola.remote.pods)."""
    s = Settings()
    lease = make_lease(s, make_api(s))
    with moola_logs_in_task():
        host, port = pods.acquire(lease, lease_file(artifacts, flow_run_id), deadline_s)
    run_logger().info("pod %s: ssh %s:%d (%s)", lease.pod_id, host, port, "; ".join(lease.events))
    return {"pod_id": lease.pod_id, "host": host, "port": port, "gpu_type": lease.gpu_type,
            "cost_per_hr": lease.cost_per_hr, "started_wall": lease.started_wall}


@task(task_run_name="make pod {pod[pod_id]} ready")
def prepare_pod(pod: dict) -> dict:
    """The pinned environment on the pod (moola.remote.podenv): installed once, probed every run."""
    s = load_settings()
    runner = make_runner("ssh", s, (pod["host"], int(pod["port"])))
    with moola_logs_in_task():
        env = ensure_env(runner, s.moola_pod_wheelhouse)
    run_logger().info("pod %s environment %s in %.1f s (python %s)%s", pod["pod_id"], "warm" if env.warm else "cold",
                      env.seconds, env.python, f": installed {' '.join(env.installed)}" if env.installed else "")
    return {**pod, "site": env.site, "env_seconds": env.seconds, "env_warm": env.warm}


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

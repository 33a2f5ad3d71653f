"""The pods of a `gates` flow run, and the pod's environment made ready before the first gate.

Under the `runpod` worker type (flows/worker.py) the worker owns the pods: it acquires them before
the flow starts, hands them over in the environment (``MOOLA_PODS``) and stops them when the flow's
process exits, however it exits. Without the worker (``python -m flows.gates --runner runpod``)
the flow leases one pod itself: acquired once (retried while there is no capacity), shared by every
gate, and stopped on every exit path: the flow's ``finally`` and, for the paths that skip it
(crash, cancellation from the UI), the state hooks. That lease is written to
``<artifacts>/pods/<flow run id>.json`` so a hook running in another process can still stop it.

A pod whose work ended in a lost connection is judged (``PodJudge``): the API says it stopped, or
its sshd stays unreachable, and it is lost: stopped at once (it is no use and still costs) and
given no more work; its unit goes to another pod (moola.pods.spread).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from moola_flows.tasks import moola_logs_in_task, run_logger
from prefect import task

from moola.core.errors import ConfigError, MoolaError, PodsLost, RemoteUnavailable
from moola.pods import lease as pods
from moola.pods.api import PodAPI, RunPodSDK, make_lease, pod_spec, sdk_from_settings
from moola.pods.env import ensure_env
from moola.pods.fleet import HANDOVER_ENV, Pod, release_handed, run_pods_record
from moola.pods.judge import LOST_PROBE_S, why_lost
from moola.pods.lease import POD_DEADLINE_S, STOP_ATTEMPTS, STOP_RETRY_S, PodHeartbeat  # noqa: F401  (tests shorten the retry)
from moola.pods.runner import make_runner
from moola.pods.spread import Spread
from moola.settings import Settings, load_settings, registry_from_settings

KEY_SECRET_ENV = "MOOLA_RUNPOD_KEY_SECRET"  # the worker names its Secret block here (the name, never the key)


def run_api(settings: Settings, block: str | None = None) -> PodAPI:
    """The RunPod API: RUNPOD_API_KEY (environment or .env), else the Prefect Secret block ``block``
    (the worker's job variable; in a run's process, the one the worker named)."""
    block = block or os.environ.get(KEY_SECRET_ENV)
    if settings.runpod_api_key is None and block:
        from prefect.blocks.system import Secret
        try:
            return RunPodSDK(str(Secret.load(block).get()))
        except Exception as exc:  # the block is gone, or the API said no
            raise ConfigError(f"RunPod API key: RUNPOD_API_KEY is not set on this machine and the Prefect Secret "
                              f"block {block!r} could not be loaded ({type(exc).__name__})") from None
    return sdk_from_settings(settings)


def lease_file(artifacts: str, flow_run_id) -> Path:
    return Path(artifacts) / "pods" / f"{flow_run_id}.json"


def worker_pods() -> list[Pod] | None:
    """The pods the `runpod` worker acquired for this run (``MOOLA_PODS``), or None without one.
    ConfigError when they do not read as this moola's pods (a worker of another moola version)."""
    raw = os.environ.get(HANDOVER_ENV)
    if not raw:
        return None
    try:
        return [Pod.model_validate(p) for p in json.loads(raw)]
    except ValueError as exc:  # pydantic's ValidationError and json's JSONDecodeError are ValueErrors
        raise ConfigError(f"{HANDOVER_ENV}: the worker's pods do not read as this moola's ({str(exc).splitlines()[0]}); "
                          "run the worker and the flow from the same moola version (the worker ends the pods)") from None


def ssh_to(pod: Pod, settings: Settings | None = None):
    """An SSHRunner for ``pod``, verifying the host key its lease recorded."""
    return make_runner("ssh", settings or load_settings(), pod.address, host_key=pod.host_key)


@task(task_run_name="acquire pod")
def acquire_pod(artifacts: str, flow_run_id: str, deadline_s: float = POD_DEADLINE_S) -> Pod:
    """Resume or create the pod and wait for its SSH port (moola.pods.lease)."""
    s = Settings()
    lease = make_lease(s, run_api(s))
    lease.name = f"moola-{flow_run_id}"  # `moola pods` finds it by this name whatever happens here
    with moola_logs_in_task():
        host, port = pods.acquire(lease, lease_file(artifacts, flow_run_id), deadline_s)
    run_logger().info("pod %s: ssh %s:%d (%s)", lease.pod_id, host, port, "; ".join(lease.events))
    return Pod(pod_id=lease.pod_id, host=host, port=port, gpu_type=lease.gpu_type, cost_per_hr=lease.cost_per_hr,
               started_wall=lease.started_wall, host_key=lease.host_key)


# The flow's own pod (no worker): heartbeats from this process while the run holds it.
_BEATS: dict[str, object] = {}


def keep_alive(pod: Pod) -> None:
    """Heartbeats to the flow's own pod from a thread of this process (the worker beats for its
    pods): a pod moola created ends itself after its idle time without them."""
    if pod.pod_id not in _BEATS:
        s = load_settings()
        _BEATS[pod.pod_id] = PodHeartbeat(ssh_to(pod, s), pod.pod_id, pod_spec(s).idle_stop_s).start()


def stop_beats() -> None:
    for beat in _BEATS.values():
        beat.stop()
    _BEATS.clear()


@task(task_run_name="make pod {pod.pod_id} ready")
def prepare_pod(pod: Pod) -> Pod:
    """The pinned environment on the pod (moola.pods.env): installed once, probed every run."""
    s = load_settings()
    with moola_logs_in_task():
        env = ensure_env(ssh_to(pod, s), s.moola_pod_wheelhouse)
    run_logger().info("pod %s environment %s in %.1f s (python %s)%s", pod.pod_id, "warm" if env.warm else "cold",
                      env.seconds, env.python, f": installed {' '.join(env.installed)}" if env.installed else "")
    return pod.model_copy(update={"site": env.site, "env_seconds": env.seconds, "env_warm": env.warm})


def release_pod(artifacts: str, flow_run_id) -> dict | None:
    """Stop the pod this flow run leased, once; idempotent (the lease file goes when stopped)."""
    path = lease_file(artifacts, flow_run_id)
    if not path.is_file():
        return None
    s = Settings()
    with moola_logs_in_task():
        return pods.release_recorded(run_api(s), pod_spec(s), path,
                                     STOP_ATTEMPTS, STOP_RETRY_S)


def stop_pod_hook(flow, flow_run, state) -> None:
    """on_failure / on_crashed / on_cancellation: stop the run's pod if the flow could not."""
    params = flow_run.parameters or {}
    if params.get("runner") == "runpod":
        release_pod(str(registry_from_settings(root=params.get("artifacts")).root), flow_run.id)


# how long ssh must stay unreachable before a pod RunPod still reports RUNNING is called lost
LOST_RUNNING_S = Settings.model_fields["moola_pod_lost_after_s"].default  # MOOLA_POD_LOST_AFTER_S


class PodJudge:
    """The run's judge of pods whose unit ended in RemoteUnavailable (moola.pods.judge says whether
    one is lost); a lost pod is released at once. ``lost`` (pod id -> why) and ``released`` (the
    stop's uptime and cost) are the run's record."""

    def __init__(self, artifacts: str, flow_run_id, window_s: float = LOST_RUNNING_S, pause_s: float = LOST_PROBE_S):
        self.artifacts, self.flow_run_id, self.window_s, self.pause_s = artifacts, flow_run_id, window_s, pause_s
        self.lost: dict[str, str] = {}
        self.released: dict[str, dict] = {}

    def why_lost(self, pod: Pod) -> str | None:
        """moola.pods.judge.why_lost with RunPod's status of the pod and one ssh connection to it."""
        s = load_settings()
        with moola_logs_in_task():
            return why_lost(lambda: (run_api(s).get_pod(pod.pod_id) or {}).get("desiredStatus", "gone"),
                            lambda: ssh_to(pod, s).connect().close(), self.window_s, self.pause_s)

    def __call__(self, pod: Pod, exc: Exception) -> str | None:
        why = self.why_lost(pod)
        if why:
            self.lost[pod.pod_id] = why
            run_logger().warning("pod %s lost: %s (after: %s); stopping it", pod.pod_id, why, exc)
            self.release(pod)
        return why

    def release(self, pod: Pod) -> None:
        """Stop a lost pod now. A worker's pod through its lease record (the worker then skips it);
        the flow's own pod through the flow's lease."""
        try:
            with moola_logs_in_task():
                if pod.record is not None:
                    s = Settings()
                    got = release_handed(run_api(s), pod_spec(s), pod, STOP_ATTEMPTS, STOP_RETRY_S)
                else:
                    got = release_pod(self.artifacts, self.flow_run_id)
        except MoolaError as exc:  # its lease record stays: the worker (or the flow's finally) stops it at the end
            run_logger().error("pod %s is lost but could not be stopped from the run (%s); it is stopped when "
                               "the run ends", pod.pod_id, exc)
            return
        if got:
            self.released[pod.pod_id] = got


def end_pods(handed: list[Pod] | None, artifacts: str, flow_run_id, judge: PodJudge) -> None:
    """End every pod of the run now: the last gate's folder is here, so nothing is left for them
    to do, and the decision (with its approval pause, up to an hour) must not keep them billing.
    A worker's pods through their lease records (the worker then reports them from the receipts);
    the flow's own pod through its lease. A pod that cannot be ended here is ended by the worker
    (or this flow's hooks) when the run's process exits."""
    if handed is None:
        stop_beats()
        got = release_pod(artifacts, flow_run_id)
        if got:
            judge.released.setdefault(got["pod_id"], got)
        return
    s = Settings()
    for pod in handed:
        if pod.pod_id in judge.released:
            continue
        try:
            with moola_logs_in_task():
                got = release_handed(run_api(s), pod_spec(s), pod, STOP_ATTEMPTS, STOP_RETRY_S)
        except MoolaError as exc:
            run_logger().error("pod %s could not be ended from the run (%s); the worker ends it when the run's "
                               "process exits", pod.pod_id, exc)
            continue
        if got:
            judge.released[pod.pod_id] = got
            run_logger().info("pod %s %s after the last gate: up %.0f s, $%.4f", pod.pod_id,
                              got.get("ended") or "ended", got["uptime_s"], got["cost_usd"])


def prepare_pods(leased: list[Pod], judge: PodJudge) -> list[Pod]:
    """Every pod made ready at once ("make pod X ready" tasks); a pod lost on the way is released
    and left out. PodsLost when none is left."""
    futures = [prepare_pod.submit(p) for p in leased]
    ready = []
    for pod, fut in zip(leased, futures):
        try:
            ready.append(fut.result())
        except RemoteUnavailable as exc:
            if not judge(pod, exc):
                raise
    if not ready:
        raise PodsLost("every pod of the run was lost before its first unit: "
                       + "; ".join(f"{k}: {v}" for k, v in judge.lost.items()))
    return ready


@dataclass
class RunPods:
    """The pods of one `gates` run: those made ready for gates, and the judge of lost ones."""

    judge: PodJudge
    leased: list[Pod] = field(default_factory=list)
    ready: list[Pod] = field(default_factory=list)

    def record(self, placed: Spread) -> list[dict]:
        """Each pod's uptime and cost, the gates it ran, and why it was lost (if it was)."""
        return run_pods_record(self.leased, self.judge.released, self.judge.lost, placed.units_on)


@contextmanager
def pods_for_run(artifacts: str, flow_run_id, deadline_s: float) -> Iterator[RunPods]:
    """The run's pods, made ready; every one ended on the way out, however the block ends.

    Under the `runpod` worker, the pods it acquired for this run; it stops them when this process
    exits. Without it, one pod of the flow's own for the whole run, stopped here (and by the state
    hooks on the paths that skip this)."""
    handed = worker_pods()
    held = RunPods(PodJudge(artifacts, flow_run_id, window_s=load_settings().moola_pod_lost_after_s))
    try:
        held.leased = handed or [acquire_pod(artifacts, str(flow_run_id), deadline_s)]
        if not handed and held.leased[0].host_key:  # a pod it created guards itself: beat for it
            keep_alive(held.leased[0])
        held.ready = prepare_pods(held.leased, held.judge)
        yield held
    finally:  # before the decision and any approval pause: pods bill by the second
        end_pods(handed, artifacts, flow_run_id, held.judge)

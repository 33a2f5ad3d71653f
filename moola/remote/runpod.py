"""The runpod runner: an ssh runner whose host comes from a RunPod pod.

The RunPod HTTP API sits behind a narrow interface (``PodAPI``: get / resume / create / stop),
so the lifecycle logic (``PodLease``) is tested against a local fake of its responses.
``RunPodSDK`` is the real implementation over the ``runpod`` package; it converts the SDK's
errors at the boundary: capacity and network errors -> RemoteUnavailable (retry), auth
errors -> RemotePermanent.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..errors import RemotePermanent, RemoteUnavailable

log = logging.getLogger("moola.remote.runpod")

# The pod's shape when nothing else says (the worker's job variables, RUNPOD_* settings): one owner.
DEFAULT_GPU_TYPES = ("NVIDIA H100 80GB HBM3", "NVIDIA H200")
DEFAULT_IMAGE = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
DEFAULT_CLOUD_TYPE = "SECURE"
DEFAULT_VOLUME_GB = 20

CAPACITY_HINTS = ("no longer any instances available", "not enough free gpus", "no instances available",
                  "insufficient capacity")


class PodAPI(Protocol):
    def get_pod(self, pod_id: str) -> dict | None: ...
    def resume_pod(self, pod_id: str, gpu_count: int) -> dict: ...
    def create_pod(self, name: str, image_name: str, gpu_type_id: str, cloud_type: str, gpu_count: int,
                   volume_in_gb: int, container_disk_in_gb: int, ports: str) -> dict: ...
    def stop_pod(self, pod_id: str) -> dict: ...


def scrub(text: str, secret: str | None = None) -> str:
    """Remove an API key from text that may end up in a log: ``api_key=...`` in URLs (older SDKs
    put it there), ``Bearer ...`` headers, and the key itself wherever it appears."""
    text = re.sub(r"(api_key=)[^&\s'\"]+", r"\1***", text, flags=re.IGNORECASE)
    text = re.sub(r"(Bearer\s+)[A-Za-z0-9._\-]+", r"\1***", text)
    if secret:
        text = text.replace(secret, "***")
    return text


def classify(exc: Exception, secret: str | None = None) -> Exception:
    """Map an SDK / network exception to moola's transient or permanent error (key scrubbed)."""
    import requests
    from runpod import error as rp_error
    msg = scrub(str(exc), secret)
    if isinstance(exc, rp_error.AuthenticationError):
        return RemotePermanent(f"RunPod rejected the API key (RUNPOD_API_KEY): {msg}")
    if isinstance(exc, requests.RequestException):
        return RemoteUnavailable(f"RunPod API unreachable: {type(exc).__name__}: {msg}")
    if isinstance(exc, rp_error.QueryError):
        if any(h in msg.lower() for h in CAPACITY_HINTS):
            return RemoteUnavailable(f"RunPod has no capacity: {msg}")
        return RemotePermanent(f"RunPod API error: {msg}")
    if isinstance(exc, ValueError):  # the SDK's own argument checks, e.g. an unknown GPU type id
        return RemotePermanent(f"RunPod SDK refused the request: {msg}")
    return RemotePermanent(f"RunPod SDK error: {type(exc).__name__}: {msg}")


class RunPodSDK:
    """PodAPI over the ``runpod`` package; the key is set here and never logged."""

    def __init__(self, api_key: str):
        import runpod
        runpod.api_key = api_key
        self._rp = runpod
        self._secret = api_key

    def _call(self, fn, *a, context: str = "", **kw):
        try:
            return fn(*a, **kw)
        except Exception as exc:  # converted at the boundary
            converted = classify(exc, self._secret)
            if context:
                converted.args = (f"{context}: {converted.args[0]}",)
        # outside the except block and `from None`: the SDK's own exception (which may hold the
        # key in a URL) is not chained into tracebacks or Prefect's logs
        raise converted from None

    def get_pod(self, pod_id):
        return self._call(self._rp.get_pod, pod_id)

    def resume_pod(self, pod_id, gpu_count):
        return self._call(self._rp.resume_pod, pod_id, gpu_count)

    def create_pod(self, **kw):
        return self._call(self._rp.create_pod, context=f"GPU type {kw.get('gpu_type_id')!r} (RUNPOD_GPU_TYPES)", **kw)

    def stop_pod(self, pod_id):
        return self._call(self._rp.stop_pod, pod_id)


def ssh_endpoint(pod: dict | None) -> tuple[str, int] | None:
    """(ip, public port) of the pod's port 22 once the container runs, else None."""
    runtime = (pod or {}).get("runtime") or {}
    for p in runtime.get("ports") or []:
        if p.get("privatePort") == 22 and p.get("isIpPublic") and p.get("ip"):
            return p["ip"], int(p["publicPort"])
    return None


@dataclass
class PodSpec:
    gpu_types: list[str]
    image: str = DEFAULT_IMAGE
    cloud_type: str = DEFAULT_CLOUD_TYPE
    volume_gb: int = DEFAULT_VOLUME_GB
    container_disk_gb: int = 20
    gpu_count: int = 1
    name: str = "moola-gates"


@dataclass
class PodLease:
    """Resume (``pod_id``) or create a pod, wait for SSH, stop it afterwards, report its cost."""

    api: PodAPI
    spec: PodSpec
    pod_id: str | None = None
    keep_alive: bool = False
    wait_timeout: float = 600.0
    poll: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    started_at: float | None = None
    started_wall: float | None = None   # time.time() at acquire: lets another process release and cost it
    cost_per_hr: float = 0.0
    gpu_type: str | None = None         # the type the pod was created with (None: resumed)
    on_pod: Callable[["PodLease"], None] | None = None  # called once the pod exists, before waiting for it
    events: list[str] = field(default_factory=list)

    def acquire(self) -> tuple[str, int]:
        if self.pod_id:
            pod = self.api.get_pod(self.pod_id)
            if pod is None:
                raise RemotePermanent(f"RunPod pod {self.pod_id} (RUNPOD_POD_ID) does not exist")
            if pod.get("desiredStatus") != "RUNNING":
                self.events.append(f"resume {self.pod_id}")
                self.api.resume_pod(self.pod_id, self.spec.gpu_count)
        else:
            self.pod_id = self._create()
        if self.started_at is None:  # billing starts here; a retried acquire keeps the first start
            self.started_at, self.started_wall = self.clock(), time.time()
        if self.on_pod is not None:
            self.on_pod(self)
        return self._wait_for_ssh()

    def record(self) -> dict:
        """What a later process needs to stop this pod and cost it (a flow's failure hook)."""
        return {"pod_id": self.pod_id, "started_wall": self.started_wall, "cost_per_hr": self.cost_per_hr,
                "keep_alive": self.keep_alive, "gpu_type": self.gpu_type}

    @classmethod
    def from_record(cls, api: PodAPI, spec: PodSpec, record: dict) -> "PodLease":
        lease = cls(api, spec, pod_id=record["pod_id"], keep_alive=bool(record.get("keep_alive")),
                    cost_per_hr=float(record.get("cost_per_hr") or 0.0), gpu_type=record.get("gpu_type"))
        if record.get("started_wall") is not None:
            lease.started_at = lease.clock() - max(0.0, time.time() - record["started_wall"])
        return lease

    def _create(self) -> str:
        last: Exception | None = None
        for gpu in self.spec.gpu_types:  # tried in order: the first with capacity wins
            try:
                pod = self.api.create_pod(name=self.spec.name, image_name=self.spec.image, gpu_type_id=gpu,
                                          cloud_type=self.spec.cloud_type, gpu_count=self.spec.gpu_count,
                                          volume_in_gb=self.spec.volume_gb,
                                          container_disk_in_gb=self.spec.container_disk_gb, ports="22/tcp")
                self.events.append(f"create {gpu} -> {pod['id']}")
                self.gpu_type = gpu
                return pod["id"]
            except RemoteUnavailable as exc:
                self.events.append(f"no capacity for {gpu}")
                log.warning("no RunPod capacity for %s: %s", gpu, exc)
                last = exc
        raise RemoteUnavailable(f"no capacity for any of {', '.join(self.spec.gpu_types)}") from last

    def _wait_for_ssh(self) -> tuple[str, int]:
        deadline = self.clock() + self.wait_timeout
        while True:
            pod = self.api.get_pod(self.pod_id) or {}
            self.cost_per_hr = float(pod.get("costPerHr") or self.cost_per_hr)
            status = pod.get("desiredStatus")
            if status in ("TERMINATED", "DEAD"):
                raise RemotePermanent(f"RunPod pod {self.pod_id} is {status}")
            endpoint = ssh_endpoint(pod) if status == "RUNNING" else None
            if endpoint:
                self.events.append(f"ssh {endpoint[0]}:{endpoint[1]}")
                return endpoint
            if self.clock() >= deadline:
                raise RemoteUnavailable(f"RunPod pod {self.pod_id} not reachable by SSH after "
                                        f"{self.wait_timeout:.0f} s (status {status})")
            self.sleep(self.poll)

    def release(self) -> dict:
        """Stop the pod unless keep-alive; return {'pod_id', 'uptime_s', 'cost_usd', 'stopped'}."""
        uptime = self.clock() - self.started_at if self.started_at is not None else 0.0
        stopped = False
        if self.pod_id and not self.keep_alive:
            try:
                self.api.stop_pod(self.pod_id)
                stopped = True
                self.events.append(f"stop {self.pod_id}")
            except RemoteUnavailable as exc:  # never mask the real outcome; say it loudly
                log.error("could not stop RunPod pod %s (stop it by hand): %s", self.pod_id, exc)
        cost = self.cost_per_hr * uptime / 3600
        log.info("RunPod pod %s: up %.0f s at $%.3f/h = $%.4f%s", self.pod_id, uptime, self.cost_per_hr, cost,
                 "" if stopped else " (left running)")
        return {"pod_id": self.pod_id, "uptime_s": uptime, "cost_usd": cost, "stopped": stopped}


def make_lease(settings, api: PodAPI | None = None) -> PodLease:
    """A PodLease from Settings (RUNPOD_*); ``api`` defaults to the real SDK."""
    return PodLease(api if api is not None else sdk_from_settings(settings), pod_spec(settings),
                    pod_id=settings.runpod_pod_id, keep_alive=settings.runpod_keep_alive,
                    wait_timeout=settings.runpod_wait_timeout)


def sdk_from_settings(settings) -> RunPodSDK:
    from ..errors import ConfigError
    if settings.runpod_api_key is None:
        raise ConfigError("runner runpod: RUNPOD_API_KEY is not set")
    return RunPodSDK(settings.runpod_api_key.get_secret_value())


def pod_spec(settings) -> PodSpec:
    return PodSpec(gpu_types=[g.strip() for g in settings.runpod_gpu_types.split(",") if g.strip()],
                   image=settings.runpod_image, cloud_type=settings.runpod_cloud_type,
                   volume_gb=settings.runpod_volume_gb)

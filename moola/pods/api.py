"""The runpod runner: an ssh runner whose host comes from a RunPod pod.

The RunPod HTTP API sits behind a narrow interface (``PodAPI``: get / list / resume / create /
stop / terminate), so the lifecycle logic (``PodLease``) is tested against local fakes of its
responses. ``RunPodSDK`` is the real implementation over the ``runpod`` package; it converts the
SDK's errors at the boundary (``classify``), as the real API answers: capacity, "Something went
wrong", network errors and 5xx pages -> RemoteUnavailable (retry); a refused key (HTTP 401, or
HTTP 200 with a GraphQL ``Unauthorized``), an HTML 403 and bad requests -> RemotePermanent.

A pod moola creates is given its SSH host key and start command at creation (podboot.py) and is
*terminated* when released: a stopped pod keeps billing its volume. Only a pod the user named
(RUNPOD_POD_ID) is stopped, and a keep-alive pod is left running.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

from moola.core.errors import ConfigError, NoCapacity, RemotePermanent, RemoteUnavailable
from moola.pods.boot import (
    BOOT_GRACE_S,
    START_COMMAND,
    PodIdentity,
    boot_env,
    graphql_safe,
    identity_from_env,
    new_identity,
)
from moola.remote.ssh import public_key_line

log = logging.getLogger("moola.pods.api")

# The pod's shape when nothing else says (the worker's job variables, RUNPOD_* settings): one owner.
DEFAULT_GPU_TYPES = ("NVIDIA H100 80GB HBM3", "NVIDIA H200")
# torch 2.8.0 (the project needs >= 2.6); on these images `python` is the interpreter with torch
# (`python3` may be the distribution's, without it)
DEFAULT_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2204"
# a container image reference (registry/name:tag@digest, Docker's grammar): nothing else reaches the
# create request, whose text the account key signs
IMAGE_REFERENCE = (r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                   r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                   r"(?:@sha256:[a-f0-9]{64})?$")
DEFAULT_POD_PYTHON = "python"
DEFAULT_CLOUD_TYPE = "SECURE"
BOOT_PROGRESS_S = 30.0  # a progress line this often while a pod boots

# No persistent volume: a pod lives for one run, and a volume bills even while its pod is stopped.
DEFAULT_VOLUME_GB = 0
# The container disk holds the pinned env (~1 GB) and two gate folders (MBs); wiped on stop.
DEFAULT_CONTAINER_DISK_GB = 30
VOLUME_MOUNT_PATH = "/workspace"  # where moola works; the SDK's own default is /runpod-volume
VOLUME_USD_PER_GB_MONTH = 0.20    # RunPod's price for a pod volume, billed running or stopped
HOURS_PER_MONTH = 730

CAPACITY_HINTS = ("no longer any instances available", "not enough free gpus", "no instances available",
                  "insufficient capacity")
# "Something went wrong. Please try again later or contact support.": RunPod's generic transient error
TRANSIENT_HINTS = ("something went wrong", "please try again later", "internal server error", "timed out")
GONE_HINTS = ("not found", "does not exist", "already terminated", "no pod")


class PodAPI(Protocol):
    def get_pod(self, pod_id: str) -> dict | None: ...
    def get_pods(self) -> list[dict]: ...
    def resume_pod(self, pod_id: str, gpu_count: int) -> dict: ...
    def create_pod(self, name: str, image_name: str, gpu_type_id: str, cloud_type: str, gpu_count: int,
                   volume_in_gb: int, container_disk_in_gb: int, ports: str, env: dict[str, str],
                   docker_args: str, volume_mount_path: str) -> dict: ...
    def stop_pod(self, pod_id: str) -> dict: ...
    def terminate_pod(self, pod_id: str) -> None: ...


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
    low = msg.lower()
    if isinstance(exc, rp_error.AuthenticationError) or (isinstance(exc, rp_error.QueryError)
                                                         and low.strip(" .") in ("unauthorized", "unauthenticated")):
        # HTTP 401, or (what the real API does for a bad key) HTTP 200 with a GraphQL "Unauthorized"
        return RemotePermanent(f"RunPod rejected the API key (RUNPOD_API_KEY): {msg}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        # the SDK parses every answer as JSON: an HTML page came back (a proxy, a block, an outage)
        page = (getattr(exc, "doc", "") or "")[:2000].lower()
        if "403" in page or "forbidden" in page or "access denied" in page:
            return RemotePermanent("RunPod API answered 403 Forbidden with an HTML page (blocked by a proxy or "
                                   "firewall, or the address is wrong); retrying will not help")
        return RemoteUnavailable(f"RunPod API answered with a page that is not JSON (an outage?): {msg[:200]}")
    if isinstance(exc, requests.RequestException):
        return RemoteUnavailable(f"RunPod API unreachable: {type(exc).__name__}: {msg}")
    if isinstance(exc, rp_error.QueryError):
        if any(h in low for h in CAPACITY_HINTS):
            return NoCapacity(f"RunPod has no capacity: {msg}")
        if any(h in low for h in TRANSIENT_HINTS):
            return RemoteUnavailable(f"RunPod API error (transient): {msg}")
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

    def get_pods(self):
        return self._call(self._rp.get_pods) or []

    def resume_pod(self, pod_id, gpu_count):
        return self._call(self._rp.resume_pod, pod_id, gpu_count)

    def create_pod(self, **kw):
        return self._call(self._rp.create_pod, context=f"GPU type {kw.get('gpu_type_id')!r} (RUNPOD_GPU_TYPES)", **kw)

    def stop_pod(self, pod_id):
        return self._call(self._rp.stop_pod, pod_id)

    def terminate_pod(self, pod_id):
        return self._call(self._rp.terminate_pod, pod_id)


def is_gone(exc: Exception) -> bool:
    """Whether an API error says the pod no longer exists (terminated in the console, say):
    for a release that is done, not a failure."""
    return isinstance(exc, RemotePermanent) and any(h in str(exc).lower() for h in GONE_HINTS)


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
    container_disk_gb: int = DEFAULT_CONTAINER_DISK_GB
    gpu_count: int = 1
    name: str | None = None           # unique per pod, ``moola-...`` (`moola pods` finds them by it); None: made up
    client_public: str | None = None  # the public half of MOOLA_SSH_KEY: the pod's PUBLIC_KEY
    workdir: str = "/workspace/moola"
    idle_stop_s: float = 900.0        # the pod's watchdog (podboot.py)
    boot_grace_s: float = BOOT_GRACE_S

    def storage_per_hr(self) -> float:
        """What the pod's volume costs per hour (running or stopped)."""
        return self.volume_gb * VOLUME_USD_PER_GB_MONTH / HOURS_PER_MONTH


@dataclass
class PodLease:
    """Resume (``pod_id``) or create a pod, wait for SSH, end it afterwards, report its cost.

    A created pod gets a fresh host key (``identity``; its public half is what SSH pins) and is
    terminated on release; a pod named by the user is resumed and stopped."""

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
    cost_per_hr: float = 0.0            # compute and storage
    gpu_type: str | None = None         # the type the pod was created with (None: resumed)
    created: bool = False               # moola created it: terminated on release
    host_key: str | None = None         # 'ssh-ed25519 AAAA...' the pod was given (None: the user's own pod)
    on_pod: Callable[["PodLease"], None] | None = None  # called once the pod exists, before waiting for it
    # called before the create request, with ``name`` and ``host_key`` set: what finds the pod again
    # when the request's answer is lost
    on_intent: Callable[["PodLease"], None] | None = None
    name: str | None = None
    events: list[str] = field(default_factory=list)
    _identity: PodIdentity | None = field(default=None, repr=False)

    def acquire(self) -> tuple[str, int]:
        if self.pod_id:
            pod = self.api.get_pod(self.pod_id)
            if pod is None:
                raise RemotePermanent(f"RunPod pod {self.pod_id} (RUNPOD_POD_ID) does not exist")
            if self.host_key is None:  # a pod moola once created keeps its env, so its host key
                ident = identity_from_env(pod.get("env"))
                self.host_key = ident.public if ident else None
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
        """What a later process needs to end this pod and cost it (a flow's failure hook); before the
        pod's id is known, its name finds it."""
        return {"pod_id": self.pod_id, "name": self.name, "started_wall": self.started_wall,
                "cost_per_hr": self.cost_per_hr, "keep_alive": self.keep_alive, "gpu_type": self.gpu_type,
                "created": self.created or self.pod_id is None, "host_key": self.host_key}

    @classmethod
    def from_record(cls, api: PodAPI, spec: PodSpec, record: dict) -> "PodLease":
        lease = cls(api, spec, pod_id=record.get("pod_id"), keep_alive=bool(record.get("keep_alive")),
                    cost_per_hr=float(record.get("cost_per_hr") or 0.0), gpu_type=record.get("gpu_type"),
                    created=bool(record.get("created")), host_key=record.get("host_key"), name=record.get("name"))
        if lease.pod_id is None and lease.name:  # only the intent was recorded: is there such a pod?
            found = lease._find_by_name(lease.name)
            lease.pod_id = found["id"] if found else None
        if record.get("started_wall") is not None:
            lease.started_at = lease.clock() - max(0.0, time.time() - record["started_wall"])
        return lease

    def _create(self) -> str:
        if not self.spec.client_public:
            raise ConfigError("runner runpod: no SSH public key for the pod (MOOLA_SSH_KEY, and its .pub beside "
                              "it or an unencrypted key): RunPod starts a pod's sshd only with one")
        if self._identity is not None:  # a retry after a lost answer: the pod may exist by now
            found = self._find_by_name(self.name)
            if found is not None:
                self.events.append(f"found {found['id']} by name {self.name}")
                self.created = True
                return found["id"]
        identity = self._identity = self._identity or new_identity()  # one per pod, kept across retries
        env = boot_env(identity, self.spec.client_public, self.spec.workdir, self.spec.idle_stop_s,
                       self.spec.boot_grace_s)
        self.name = self.name or self.spec.name or f"moola-{uuid.uuid4().hex[:12]}"
        name, image = graphql_safe("pod name", self.name), graphql_safe("pod image", self.spec.image)
        self.host_key = identity.public
        if self.on_intent is not None:  # recorded before asking: a lost answer still leaves the name
            self.on_intent(self)
        last: Exception | None = None
        for gpu in self.spec.gpu_types:  # tried in order: the first with capacity wins
            try:
                pod = self.api.create_pod(name=name, image_name=image, gpu_type_id=graphql_safe("GPU type", gpu),
                                          cloud_type=self.spec.cloud_type, gpu_count=self.spec.gpu_count,
                                          volume_in_gb=self.spec.volume_gb,
                                          container_disk_in_gb=self.spec.container_disk_gb, ports="22/tcp",
                                          env=env, docker_args=START_COMMAND, volume_mount_path=VOLUME_MOUNT_PATH)
                self.events.append(f"create {gpu} -> {pod['id']}")
                log.info("RunPod pod %s created (%s); waiting for it to boot", pod["id"], gpu)
                self.gpu_type, self.created = gpu, True
                return pod["id"]
            except NoCapacity as exc:
                self.events.append(f"no capacity for {gpu}")
                log.warning("no RunPod capacity for %s: %s", gpu, exc)
                last = exc
            except RemoteUnavailable as exc:
                # the answer is lost, not a refusal: RunPod may have created the pod. Find it by its
                # name before asking again, so a pod is never created twice
                found = self._find_by_name(name)
                if found is not None:
                    self.events.append(f"create {gpu}: answer lost ({exc}); found {found['id']} by name")
                    self.gpu_type, self.created = gpu, True
                    return found["id"]
                self.events.append(f"create {gpu} failed: {exc}")
                raise
        raise NoCapacity(f"no capacity for any of {', '.join(self.spec.gpu_types)}") from last

    def _find_by_name(self, name: str) -> dict | None:
        try:
            return next((p for p in self.api.get_pods() if p.get("name") == name), None)
        except RemoteUnavailable as exc:  # the API is down: the caller's retry asks again later
            raise RemoteUnavailable(f"RunPod API: the create answer was lost and the pod list is unreachable "
                                    f"({exc})") from exc

    def _wait_for_ssh(self) -> tuple[str, int]:
        start = self.clock()
        deadline, said = start + self.wait_timeout, start
        while True:
            pod = self.api.get_pod(self.pod_id) or {}
            if pod.get("costPerHr") is not None:
                self.cost_per_hr = float(pod["costPerHr"]) + self.spec.storage_per_hr()
            status = pod.get("desiredStatus")
            if status in ("TERMINATED", "DEAD"):
                raise RemotePermanent(f"RunPod pod {self.pod_id} is {status}")
            endpoint = ssh_endpoint(pod) if status == "RUNNING" else None
            if endpoint:
                self.events.append(f"ssh {endpoint[0]}:{endpoint[1]}")
                log.info("RunPod pod %s is up after %.0f s (ssh %s:%d)", self.pod_id, self.clock() - start, *endpoint)
                return endpoint
            if self.clock() - said >= BOOT_PROGRESS_S:  # a boot takes minutes: say so, not nothing
                said = self.clock()
                log.info("RunPod pod %s still booting after %.0f s (status %s)", self.pod_id, said - start,
                         status or "unknown")
            if self.clock() >= deadline:
                raise RemoteUnavailable(f"RunPod pod {self.pod_id} not reachable by SSH after "
                                        f"{self.wait_timeout:.0f} s (status {status})")
            self.sleep(self.poll)

    def release(self) -> dict:
        """End the pod: terminated if moola created it, stopped if it is the user's own, left running
        if keep-alive. {'pod_id', 'uptime_s', 'cost_usd', 'stopped', 'ended'}; ``stopped`` means no
        longer billed for compute, ``ended`` says how ('terminated', 'stopped', 'gone', None)."""
        uptime = self.clock() - self.started_at if self.started_at is not None else 0.0
        ended = None
        if self.pod_id and not self.keep_alive:
            try:
                if self.created:
                    self.api.terminate_pod(self.pod_id)
                    ended = "terminated"
                else:
                    self.api.stop_pod(self.pod_id)
                    ended = "stopped"
                self.events.append(f"{ended} {self.pod_id}")
            except RemotePermanent as exc:
                if not is_gone(exc):
                    raise
                ended = "gone"  # terminated elsewhere (the console, its watchdog): nothing left to end
                self.events.append(f"gone {self.pod_id}")
            except RemoteUnavailable as exc:  # never mask the real outcome; say it loudly
                log.error("could not end RunPod pod %s (terminate it by hand): %s", self.pod_id, exc)
        cost = self.cost_per_hr * uptime / 3600
        log.info("RunPod pod %s: up %.0f s at $%.3f/h = $%.4f (%s)", self.pod_id, uptime, self.cost_per_hr, cost,
                 ended or "left running")
        return {"pod_id": self.pod_id, "uptime_s": uptime, "cost_usd": cost, "stopped": ended is not None,
                "ended": ended}


def make_lease(settings, api: PodAPI | None = None) -> PodLease:
    """A PodLease from Settings (RUNPOD_*); ``api`` defaults to the real SDK."""
    return PodLease(api if api is not None else sdk_from_settings(settings), pod_spec(settings),
                    pod_id=settings.runpod_pod_id, keep_alive=settings.runpod_keep_alive,
                    wait_timeout=settings.runpod_wait_timeout)


def sdk_from_settings(settings) -> RunPodSDK:
    if settings.runpod_api_key is None:
        raise ConfigError("runner runpod: RUNPOD_API_KEY is not set")
    return RunPodSDK(settings.runpod_api_key.get_secret_value())


def client_public_key(settings) -> str | None:
    """The public half of MOOLA_SSH_KEY (its .pub file, else derived from the key), or None."""
    if settings.moola_ssh_key is None:
        return None
    passphrase = settings.moola_ssh_key_passphrase.get_secret_value() if settings.moola_ssh_key_passphrase else None
    try:
        return public_key_line(settings.moola_ssh_key, passphrase)
    except RemotePermanent as exc:  # only creating a pod needs it (it raises then); ending one does not
        log.warning("%s", exc)
        return None


def pod_spec(settings, **overrides) -> PodSpec:
    spec = dict(gpu_types=[g.strip() for g in settings.runpod_gpu_types.split(",") if g.strip()],
                image=settings.runpod_image, cloud_type=settings.runpod_cloud_type,
                volume_gb=settings.runpod_volume_gb, client_public=client_public_key(settings),
                workdir=settings.moola_remote_workdir)
    spec.update(overrides)
    return PodSpec(**spec)

"""One pod lifecycle for every caller (the `gates` flow, ``RunPodRunner``):

    acquire(lease, record, deadline_s)   resume or create, wait for SSH, retried under a deadline;
                                         the lease record is written as soon as a pod id exists
    release(lease, record)               terminate (a pod moola created) or stop (the user's own),
                                         retried: a pod left running costs money; the record is
                                         removed only once the pod is ended
    release_recorded(api, spec, record)  the same from the record alone, in another process
                                         (a flow's failure hook, a later run)

The record (JSON, written atomically) is what lets a crash, a cancellation or a second process
still find and stop the pod.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Callable

from moola.core.errors import RemoteError, RemotePermanent
from moola.core.files import write_json_atomic
from moola.gates.call import GateCall
from moola.pods.api import PodAPI, PodLease, PodSpec
from moola.remote.retry import call_with_retry

log = logging.getLogger("moola.pods.lease")

STOP_ATTEMPTS, STOP_RETRY_S = 3, 5.0
POD_DEADLINE_S = 1800  # how long a run waits for capacity (retrying) before it fails without a pod
SSH_UP_S = 120  # how long a pod's sshd may take to answer after the API shows its port


def acquire(lease: PodLease, record: Path, deadline_s: float = 0.0, extra: dict | None = None,
            give_up: Callable[[], str | None] | None = None) -> tuple[str, int]:
    """(host, port) of the pod's SSH once it is up. Transient failures (no capacity for any GPU
    type, pod not up yet) are retried with capped backoff until ``deadline_s``; a pod created by
    a failed attempt is reused, never created twice. ``extra`` goes into the record (its owner)."""
    owner = {"host": socket.gethostname(), "pid": os.getpid()}  # `moola pods` tells live owners from gone ones

    def write(_=None):
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(record, {**lease.record(), "owner": owner, **(extra or {})})
        except OSError as exc:  # a full or read-only disk must not leave the pod unowned: it is ended
            log.error("cannot write the lease record %s (%s); pod %s is still ended by this process", record,
                      exc, lease.pod_id)
    # written as soon as the pod exists, before a boot of minutes: a process killed while waiting
    # still leaves what a hook or a restarted worker needs to stop it
    lease.on_pod = lease.on_intent = write
    try:
        return call_with_retry(lease.acquire, retry_for=deadline_s, give_up=give_up)
    finally:
        if lease.pod_id:  # again with the final price; also when waiting failed: the pod may cost money
            write()


def mark_guarded(record: Path) -> None:
    """Say in the pod's lease record that its watchdog was verified: a restarted worker leaves a
    guarded pod of a live run to that watchdog, and ends a never-guarded one whose owner is gone
    (nothing else ever would). A record that cannot be rewritten only costs that distinction."""
    try:
        rec = json.loads(Path(record).read_text())
        write_json_atomic(Path(record), {**rec, "guarded": True})
    except (OSError, ValueError) as exc:
        log.warning("cannot mark %s guarded (%s)", record, exc)


def release(lease: PodLease, record: Path, attempts: int = STOP_ATTEMPTS, retry_s: float = STOP_RETRY_S,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Stop the pod (unless keep-alive), trying ``attempts`` times; the record goes only once it
    is stopped, so a failure hook or a later release tries again."""
    out = {}
    for attempt in range(attempts):
        try:
            out = lease.release()
        except RemotePermanent as exc:  # e.g. the key was revoked: retrying will not help, say it
            log.error("pod %s could NOT be ended: %s; its lease stays in %s", lease.pod_id, exc, record)
            up = lease.clock() - lease.started_at if lease.started_at is not None else 0.0
            return {"pod_id": lease.pod_id, "uptime_s": up, "cost_usd": lease.cost_per_hr * up / 3600,
                    "stopped": False, "ended": None, "error": str(exc)}
        if out["stopped"] or lease.keep_alive:
            _forget(record)
            break
        if attempt + 1 < attempts:
            sleep(retry_s)
    if out["stopped"] or lease.keep_alive:
        log.info("pod %s released: up %.0f s, $%.4f%s", out["pod_id"], out["uptime_s"], out["cost_usd"],
                 "" if out["stopped"] else " (left running: RUNPOD_KEEP_ALIVE)")
    else:
        log.error("pod %s could NOT be stopped after %d attempts: stop it in the RunPod console "
                  "(up %.0f s so far, $%.2f/h); its lease stays in %s", out["pod_id"], attempts, out["uptime_s"],
                  lease.cost_per_hr, record)
    return out


def _forget(record: Path) -> None:
    """Remove a lease record once its pod is ended; a disk that refuses is said, not raised."""
    try:
        record.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the lease record %s (%s); its pod is ended", record, exc)


def release_recorded(api: PodAPI, spec: PodSpec, record: Path, attempts: int = STOP_ATTEMPTS,
                     retry_s: float = STOP_RETRY_S) -> dict | None:
    """Release the pod named in ``record``, if any (idempotent: None when there is none)."""
    if not record.is_file():
        return None
    lease = PodLease.from_record(api, spec, json.loads(record.read_text()))
    if lease.pod_id is None:  # only an intent, and RunPod has no pod of that name: nothing to end
        record.unlink(missing_ok=True)
        return None
    return release(lease, record, attempts, retry_s)


# -- heartbeats: a pod moola created ends itself without them (its watchdog) ----------------------
def heartbeat_path(workdir, pod_id: str) -> PurePosixPath:
    """Where the orchestrator beats and the pod's watchdog looks (podboot.py uses the same layout)."""
    return PurePosixPath(workdir) / "heartbeat" / pod_id


HEARTBEAT_TIMEOUT_S = 20.0  # a touch that takes longer is a missed beat, not a wait


def beat_every(idle_stop_s: float) -> float:
    """How often a pod is told it is still wanted: four beats per idle time, at most a minute apart."""
    return max(1.0, min(60.0, idle_stop_s / 4))


class PodHeartbeat:
    """Heartbeats to one pod from a thread, for the owners that are not the worker (the flow's own
    pod, `moola gate run --runner runpod`): a pod moola created guards itself from boot, and would
    end itself under a gate that outlasts its idle time without them. Missed beats are logged."""

    def __init__(self, runner, pod_id: str, idle_stop_s: float):
        self.runner, self.path = runner, str(heartbeat_path(runner.workdir, pod_id))
        self.every, self.pod_id = beat_every(idle_stop_s), pod_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{pod_id}", daemon=True)

    def start(self) -> "PodHeartbeat":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                touch(self.runner, self.path)
            except RemoteError as exc:
                log.warning("heartbeat to pod %s failed: %s", self.pod_id, exc)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()


def touch(runner, path: str, timeout: float = HEARTBEAT_TIMEOUT_S) -> None:
    with runner.session() as client:
        runner.execute(client, ["touch", path], timeout=timeout)


class RunPodRunner:
    """Acquire a pod, run the gate over ssh on it, and release the pod on every exit path, through
    the one pod lifecycle above (its lease record at ``record`` while the pod may be up)."""

    def __init__(self, lease: PodLease, make_ssh: Callable[[str, int, str | None], object], record: Path | None = None):
        self.lease, self.make_ssh = lease, make_ssh
        self.record = record

    def run_gate(self, call: GateCall) -> Path:
        import tempfile
        record = self.record or Path(tempfile.mkdtemp(prefix="moola-pod-")) / "lease.json"
        beats = None
        try:
            host, port = acquire(self.lease, record)
            runner = self.make_ssh(host, port, self.lease.host_key)
            # a booting pod's sshd answers some seconds after the API shows its port: wait for it
            # here, on this pod, rather than end it and have a retry create another
            call_with_retry(lambda: runner.connect().close(), retry_for=SSH_UP_S)
            if self.lease.host_key:  # a pod moola made: its watchdog ends it unless told it is still wanted
                beats = PodHeartbeat(runner, self.lease.pod_id, self.lease.spec.idle_stop_s).start()
            return runner.run_gate(call)
        finally:
            if beats is not None:
                beats.stop()
            if self.lease.pod_id:
                release(self.lease, record)

"""The pods of one run, owned by whoever starts the run (the `runpod` worker type, flows/worker.py):

    fleet = Fleet(api, spec, count, records, run_id, ...)
    fleet.acquire()        N pods side by side, each under the same deadline and GPU-type
                           failover; a lease record per pod in ``records`` as soon as its id exists
    fleet.guard()          verify each pod's watchdog (started by the pod's own start command, see
                           podboot.py; started over SSH on a pod moola did not create) and beat once
    fleet.handover()       what the run's process needs: host, port, pod id, GPU type, price, and
                           the lease record (the run stops a pod it found lost through it)
    fleet.heartbeat()      touch each pod's heartbeat file (the watchdog stops a pod left alone)
    fleet.cost_usd()       estimated spend so far (cost/hour x uptime, per pod)
    fleet.release()        stop every pod (retried), records removed once stopped; idempotent

``release_run(records, run_id)`` does the last step from the records alone, for a worker that
restarted after the run's own worker died; ``release_handed(api, spec, pod)`` stops one pod from
the run's process (found lost), leaving a receipt that ``release()`` reports with the others.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from pydantic import BaseModel, ConfigDict

from moola.core.errors import RemoteError, RemotePermanent, RemoteUnavailable
from moola.core.files import write_json_atomic
from moola.pods import lease as pods
from moola.pods.api import PodAPI, PodLease, PodSpec
from moola.pods.lease import heartbeat_path, touch
from moola.remote.retry import call_with_retry

log = logging.getLogger("moola.pods.fleet")

IDLE_STOP_S = 900  # a pod without a heartbeat for this long stops itself (its watchdog)
HANDOVER_ENV = "MOOLA_PODS"  # the run's process finds its pods here (JSON list, see Fleet.handover)


class Pod(BaseModel):
    """A pod a run holds: where its sshd answers and the host key it must show (None: verified
    against known_hosts), its GPU and price, and for a worker's pod the lease record the run stops
    it through. ``site`` and the env fields once the pod is made ready (moola.pods.env)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pod_id: str
    host: str
    port: int
    gpu_type: str | None = None
    cost_per_hr: float | None = None
    started_wall: float | None = None
    host_key: str | None = None
    record: Path | None = None   # the worker's lease record; None for the flow's own pod
    site: str | None = None      # the pod's pinned environment, once ready
    env_seconds: float | None = None
    env_warm: bool | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


@dataclass
class Fleet:
    api: PodAPI
    spec: PodSpec
    count: int
    records: Path
    run_id: str
    deadline_s: float = pods.POD_DEADLINE_S
    keep_alive: bool = False
    idle_stop_s: float = IDLE_STOP_S
    make_ssh: Callable[[str, int, str | None], object] | None = None   # (host, port, host key) -> SSHRunner
    poll_s: float = 5.0
    record_extra: dict = field(default_factory=dict)  # more for each lease record (the key's Secret block)
    # the run's budget, also while acquiring: with capacity for some pods only, the others would wait
    # (billed, not yet guarded by the worker) for up to deadline_s
    max_usd: float | None = None
    leases: list[PodLease] = field(default_factory=list)
    endpoints: list[tuple[str, int]] = field(default_factory=list)
    heartbeats: list[str | None] = field(default_factory=list)
    released: list[dict] = field(default_factory=list)

    def record(self, i: int) -> Path:
        return self.records / f"{self.run_id}.{i}.json"

    def acquire(self) -> list[tuple[str, int]]:
        """Every pod up with SSH, or none: a failure releases the pods already acquired. The pods are
        acquired side by side (a pod's boot takes minutes: N pods in a row would take N boots)."""
        t_end = time.monotonic() + self.deadline_s
        self.leases = [PodLease(self.api, self.spec, keep_alive=self.keep_alive, poll=self.poll_s,
                                wait_timeout=min(600.0, self.deadline_s),
                                name=f"{self.spec.name}-{i}" if self.spec.name else None) for i in range(self.count)]

        def one(i: int) -> tuple[str, int]:
            lease = self.leases[i]
            got = pods.acquire(lease, self.record(i), max(0.0, t_end - time.monotonic()),
                               extra={"run_id": self.run_id, **self.record_extra}, give_up=self.over_budget)
            log.info("pod %d/%d: %s (%s) at $%.2f/h; %s", i + 1, self.count, lease.pod_id, lease.gpu_type or "?",
                     lease.cost_per_hr, "; ".join(lease.events))
            return got
        try:
            self.endpoints = _each(one, self.count)
        except BaseException:
            self.release()
            raise
        return self.endpoints

    def _ssh(self, i: int):
        return self.make_ssh(*self.endpoints[i], self.leases[i].host_key)

    def guard(self) -> None:
        """Verify each pod's watchdog runs and guards that pod; a pod that is not guarded is a failed
        acquisition (the caller releases every pod and says why)."""
        if self.make_ssh is None:
            return
        # the API shows the SSH port before sshd answers on a booting pod: retried for a while
        def one(i: int) -> str:
            hb = call_with_retry(lambda: guard_pod(self._ssh(i), self.leases[i].pod_id, self.idle_stop_s,
                                                   started_at_boot=self.leases[i].created), retry_for=pods.SSH_UP_S)
            pods.mark_guarded(self.record(i))
            return hb
        self.heartbeats = _each(one, len(self.leases))

    def heartbeat(self) -> None:
        """Touch every pod's heartbeat file, side by side, each bounded by HEARTBEAT_TIMEOUT_S: one
        hung pod delays none of the others (and, run in a thread by the worker, no budget check)."""
        def beat(i: int) -> None:
            path = self.heartbeats[i]
            if path is None or not self.record(i).is_file():  # none, or the run ended this pod
                return
            try:
                touch(self._ssh(i), path)
            except RemoteError as exc:  # a missed beat is not fatal; many are, by design
                log.warning("heartbeat to pod %s failed: %s", self.leases[i].pod_id, exc)
        _each(beat, len(self.heartbeats))

    def handover(self) -> list[Pod]:
        # ``record``: the run stops a pod it found lost through it (release_handed), and
        # release() then reports that pod from its receipt
        return [Pod(pod_id=ls.pod_id, host=h, port=p, gpu_type=ls.gpu_type, cost_per_hr=ls.cost_per_hr,
                    started_wall=ls.started_wall, record=self.record(i), host_key=ls.host_key)
                for i, (ls, (h, p)) in enumerate(zip(self.leases, self.endpoints))]

    def over_budget(self) -> str | None:
        """Why the run must stop for its budget, or None (no max_usd, or not passed yet)."""
        spent = self.cost_usd()
        if self.max_usd is not None and spent > self.max_usd:
            return (f"budget: ${spent:.4f} spent on {sum(1 for ls in self.leases if ls.pod_id)} pod(s) passed "
                    f"max_usd ${self.max_usd:.4f}")
        return None

    def cost_usd(self, now: float | None = None) -> float:
        """Estimated spend so far: a pod already ended (by the run, or released here) counts what it cost
        until it ended, not its uptime since (which would stop a run's budget early, for nothing)."""
        ended = {r["pod_id"]: r["cost_usd"] for r in self.released if r.get("stopped")}
        total = 0.0
        for i, ls in enumerate(self.leases):
            if ls.pod_id in ended:
                total += ended[ls.pod_id]
                continue
            receipt = peek_receipt(self.record(i))  # the run ended it (lost, or after its last gate)
            total += float(receipt.get("cost_usd") or 0.0) if receipt and receipt.get("stopped") \
                else usage(ls, now)["cost_usd"]
        return total

    def release(self) -> list[dict]:
        """End every pod (unless keep-alive: then its watchdog stands down), whatever happens to any
        one of them: one pod's failure is logged and the others are still ended. Idempotent: returns
        every pod released so far, with its uptime and cost. A pod is ended from its lease in memory
        even when its record could not be written."""
        out = self.released
        done = {r["pod_id"] for r in out if r.get("stopped") or self.keep_alive}
        for i, lease in enumerate(self.leases):
            if not lease.pod_id:  # never created, or its create answer was lost: the record knows its name
                try:
                    got = pods.release_recorded(self.api, self.spec, self.record(i))
                except Exception as exc:
                    log.error("pod %s (answer of its create lost) could not be ended: %s", lease.name, exc)
                    continue
                if got is not None:
                    out.append({**got, "gpu_type": lease.gpu_type, "cost_per_hr": lease.cost_per_hr})
                continue
            if lease.pod_id in done:
                continue
            stopped = take_receipt(self.record(i))
            if stopped is not None:  # the run ended this pod itself (lost, or after its last gate)
                out.append({**stopped, "gpu_type": lease.gpu_type, "cost_per_hr": lease.cost_per_hr,
                            "released_by": "run"})
                continue
            if self.keep_alive and i < len(self.heartbeats) and self.heartbeats[i]:
                try:
                    stand_down(self._ssh(i), self.heartbeats[i])
                except RemoteError as exc:
                    log.warning("pod %s: could not stand its watchdog down (%s); it will end the pod after "
                                "%.0f s", lease.pod_id, exc, self.idle_stop_s)
            try:
                got = pods.release(lease, self.record(i))
            except Exception as exc:  # never let one pod keep the others running
                log.error("pod %s could not be ended (%s: %s); its lease stays in %s", lease.pod_id,
                          type(exc).__name__, exc, self.record(i))
                got = {**usage(lease), "stopped": False, "ended": None, "error": str(exc)}
            out[:] = [r for r in out if r["pod_id"] != lease.pod_id]  # a retried release replaces a failed one
            out.append({**got, "gpu_type": lease.gpu_type, "cost_per_hr": lease.cost_per_hr})
        return out


def _each(fn: Callable[[int], object], n: int) -> list:
    """[fn(0), ..., fn(n-1)] run side by side; every call finishes before the first error is raised
    (so nothing is still acquiring when the caller releases)."""
    if n <= 1:
        return [fn(i) for i in range(n)]
    with ThreadPoolExecutor(n, thread_name_prefix="pod") as ex:
        futures = [ex.submit(fn, i) for i in range(n)]
        wait(futures)
    return [f.result() for f in futures]


def usage(lease: PodLease, now: float | None = None) -> dict:
    """Uptime and estimated cost of one pod so far."""
    up = 0.0 if lease.started_wall is None else max(0.0, (now or time.time()) - lease.started_wall)
    return {"pod_id": lease.pod_id, "gpu_type": lease.gpu_type, "uptime_s": up, "cost_per_hr": lease.cost_per_hr,
            "cost_usd": lease.cost_per_hr * up / 3600}


def pods_usage(held: list[Pod], now: float | None = None) -> list[dict]:
    """Uptime and cost so far of a run's pods, for the run's own records."""
    now = now or time.time()
    out = []
    for p in held:
        up = max(0.0, now - p.started_wall) if p.started_wall else 0.0
        out.append({"pod_id": p.pod_id, "gpu_type": p.gpu_type, "uptime_s": round(up, 1),
                    "cost_per_hr": p.cost_per_hr or 0.0, "cost_usd": round((p.cost_per_hr or 0.0) * up / 3600, 4)})
    return out


def run_pods_record(held: list[Pod], released: dict[str, dict], lost: dict[str, str],
                    units_on: Callable[[str], list[str]], now: float | None = None) -> list[dict]:
    """Each pod of a run for its record: uptime and cost (final for one the run ``released``, else
    so far), the units it ran (``units_on``), and why it was ``lost`` (None if it was not)."""
    out = []
    for p in pods_usage(held, now):
        gone = released.get(p["pod_id"])
        if gone:  # ended by the run (after the last gate, or lost): its final uptime and cost
            p = {**p, "uptime_s": round(gone["uptime_s"], 1), "cost_usd": round(gone["cost_usd"], 4)}
        out.append({**p, "units": units_on(p["pod_id"]), "lost": lost.get(p["pod_id"])})
    return out


def release_handed(api: PodAPI, spec: PodSpec, pod: Pod, attempts: int = pods.STOP_ATTEMPTS,
                   retry_s: float = pods.STOP_RETRY_S) -> dict | None:
    """Stop a handed-over pod from the run's own process (the run found it lost), through its lease
    record; a receipt beside the record gives the worker the pod's final uptime and cost."""
    record = Path(pod.record)
    got = pods.release_recorded(api, spec, record, attempts, retry_s)
    if got is not None and got["stopped"]:
        write_json_atomic(record.with_suffix(".stopped"), got)
    return got


def peek_receipt(record: Path) -> dict | None:
    """The receipt release_handed left for ``record``, left in place; None if there is none."""
    try:
        got = json.loads(record.with_suffix(".stopped").read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None


def take_receipt(record: Path) -> dict | None:
    """The receipt release_handed left for ``record`` (read once, then removed), or None."""
    got = peek_receipt(record)
    if got is not None:
        record.with_suffix(".stopped").unlink(missing_ok=True)
    return got


def run_records(records: Path) -> dict[str, list[Path]]:
    """{run id: its lease record files} for the pods moola's worker leased and has not stopped."""
    out: dict[str, list[Path]] = {}
    for p in sorted(Path(records).glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            log.warning("unreadable lease record %s: skipped (`moola pods` still lists its pod)", p)
            continue
        run_id = rec.get("run_id") if isinstance(rec, dict) else None
        if run_id:
            out.setdefault(str(run_id), []).append(p)
    return out


def record_field(paths: list[Path], name: str):
    """``name`` from the first of these lease records that has it (None if none does)."""
    for p in paths:
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get(name) is not None:
            return rec[name]
    return None


def release_run(api: PodAPI, spec: PodSpec, paths: list[Path]) -> list[dict]:
    """End the pods of these records (a restarted worker cleaning up after a dead one); one record
    that fails (unreadable, the API refusing) never keeps the others' pods running."""
    out = []
    for p in paths:
        try:
            got = pods.release_recorded(api, spec, p)
        except Exception as exc:
            log.error("lease %s: its pod could not be ended (%s: %s)", p, type(exc).__name__, exc)
            continue
        if got is not None:
            out.append(got)
    return out


# -- the watchdog, checked over ssh -----------------------------------------------------------
def guard_pod(runner, pod_id: str, idle_stop_s: float, started_at_boot: bool = True) -> str:
    """Verify that the pod's watchdog runs and guards ``pod_id``, and beat once; the heartbeat path.

    A pod moola created started its watchdog in its start command; any other pod (the user's own)
    gets one started here, detached (it reads the key from PID 1's environment). RemoteUnavailable
    while the watchdog has not written its status yet (the pod is still starting); RemotePermanent
    when it cannot guard the pod (no key in the pod, another pod's id, not running)."""
    hb = heartbeat_path(runner.workdir, pod_id)
    status_file = f"{hb}.guard"
    with runner.session() as client:
        code, text = runner.execute(client, ["cat", status_file])
        if code != 0 and not started_at_boot:
            start_watchdog(runner, client, hb, pod_id, idle_stop_s)
            code, text = runner.execute(client, ["cat", status_file])
        if code != 0:
            raise RemoteUnavailable(f"pod {pod_id}: its watchdog has not reported yet ({status_file})")
        try:
            status = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RemoteUnavailable(f"pod {pod_id}: its watchdog's status is not written yet") from None
        _, log_tail = runner.execute(client, ["tail", "-n", "5", f"{hb}.log"])
        if status.get("error"):
            raise RemotePermanent(f"pod {pod_id} is not guarded: its watchdog says {status['error']}; {log_tail}")
        if status.get("pod_id") != pod_id:
            raise RemotePermanent(f"pod {pod_id} is not guarded: its watchdog guards {status.get('pod_id')!r}")
        alive, _ = runner.execute(client, ["kill", "-0", str(int(status["pid"]))])
        if alive != 0:
            raise RemotePermanent(f"pod {pod_id} is not guarded: its watchdog (pid {status['pid']}) is not "
                                  f"running; {log_tail}")
        runner.execute(client, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && touch "$1"', "sh", str(hb)])
    log.info("pod %s guarded: watchdog pid %s ends it after %.0f s without a heartbeat", pod_id, status["pid"],
             status.get("idle_stop_s") or idle_stop_s)
    return str(hb)


def start_watchdog(runner, client, hb: PurePosixPath, pod_id: str, idle_stop_s: float) -> None:
    """Ship the code and start the watchdog detached over ssh (a pod not created by moola)."""
    sftp = client.open_sftp()
    code_dir = runner.ship_code(client, sftp)
    runner.execute(client, ["mkdir", "-p", str(hb.parent)])
    argv = [runner.python, "-m", "moola.pods.watchdog", "--heartbeat", str(hb), "--idle-stop-s",
            str(idle_stop_s), "--pod-id", pod_id, "--status", f"{hb}.guard"]
    # setsid + redirects: the watchdog outlives this ssh session and holds none of its pipes
    code, tail = runner.execute(client, ["sh", "-c", 'cd "$1" && shift && log="$1" && shift && '
                                       '{ PYTHONPATH="$PWD" setsid "$@" > "$log" 2>&1 < /dev/null & }',
                                       "sh", str(code_dir), f"{hb}.log", *argv])
    if code != 0:
        raise RemoteUnavailable(f"could not start the watchdog on pod {pod_id}: {tail}")
    time.sleep(0.5)  # it writes its status as its first act


def stand_down(runner, path: str) -> None:
    """Tell the pod's watchdog the pod is kept alive on purpose."""
    with runner.session() as client:
        runner.execute(client, ["touch", f"{path}.keep"])

"""The `runpod` Prefect worker type: the worker owns the pods of each flow run.

    prefect work-pool create runpod --type runpod
    prefect worker start --pool runpod --type runpod

For each flow run whose ``runner`` parameter is ``runpod`` it first checks the run's data (Gate 0,
here: invalid or missing data must not cost a pod boot), then acquires ``pods`` pods (GPU types
tried in order, capacity retried until ``pod_deadline_s``; no-capacity, a refused key and a bad
spec told apart: moola.pods.api). Each pod is created with its own SSH host key and a start
command that starts its watchdog (moola.pods.boot): the worker verifies that watchdog (it
terminates the pod when the heartbeats this worker sends stop for ``idle_stop_s``, or when none
ever comes), then starts the flow run as a local process, exactly as Prefect's process worker
does, with the pods (and the host key each connection pins) handed over in ``MOOLA_PODS``. While the process runs the worker sends
heartbeats and checks the run's estimated spend against ``max_usd`` (over it: the process is
stopped and the run ends Failed with the figure). When the process exits, however it exits
(SIGKILL, a cancellation from the UI, a crash), and when the worker itself is stopped, every pod
is terminated (the run itself ends them as soon as the last gate's folder is fetched). Each pod's
lease is recorded under ``<MOOLA_ARTIFACTS>/pods/worker/`` so a restarted worker ends the pods of
runs that ended while it was away.

The RunPod API key: RUNPOD_API_KEY (environment or .env), else the Prefect Secret block named by
the ``api_key_secret`` job variable. It is never a job variable itself.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Literal, Optional
from uuid import UUID

import anyio
import psutil
from moola_flows.pod import KEY_SECRET_ENV, run_api
from moola_flows.tasks import moola_logs_to
from prefect.workers.process import ProcessJobConfiguration, ProcessVariables, ProcessWorker, ProcessWorkerResult
from pydantic import Field

from moola.core.errors import DataError, MoolaError
from moola.data.config import DataConfig
from moola.pods.api import (
    DEFAULT_CLOUD_TYPE,
    DEFAULT_GPU_TYPES,
    DEFAULT_IMAGE,
    DEFAULT_VOLUME_GB,
    IMAGE_REFERENCE,
    PodSpec,
    pod_spec,
)
from moola.pods.fleet import HANDOVER_ENV, IDLE_STOP_S, Fleet, record_field, release_run, run_records
from moola.pods.lease import POD_DEADLINE_S, beat_every
from moola.pods.listing import NAME_PREFIX, clean, moola_pods, owner_alive
from moola.pods.runner import make_runner
from moola.settings import load_settings, registry_from_settings

API_KEY_BLOCK = "runpod-api-key"
# a heartbeat goes every idle_stop_s/4: below a minute, one slow SSH round trip could end a healthy pod
MIN_IDLE_STOP_S = 60
DEFAULT_MAX_USD = 20.0  # a run's pods are ended past this estimated spend unless the deployment says otherwise
GATE_TIMEOUT_S = 4 * 3600.0  # a gate on the sample takes seconds, on real data minutes: hours means hung
WATCH_S = 1.0        # how often the budget is checked while the flow runs
KILL_GRACE_S = 10.0  # SIGTERM, then SIGKILL after this long
CANCEL_GRACE_S = 15.0  # a cancelled run's process gets this long to be stopped by Prefect


class RunPodJobConfiguration(ProcessJobConfiguration):
    gpu_types: list[str] = Field(default_factory=lambda: list(DEFAULT_GPU_TYPES))
    cloud_type: str = DEFAULT_CLOUD_TYPE
    pod_image: str = DEFAULT_IMAGE
    volume_gb: int = DEFAULT_VOLUME_GB
    pods: int = 1
    pod_deadline_s: float = POD_DEADLINE_S
    max_usd: Optional[float] = DEFAULT_MAX_USD
    gate_timeout_s: Optional[float] = GATE_TIMEOUT_S
    idle_stop_s: float = IDLE_STOP_S
    keep_alive: bool = False
    api_key_secret: str = API_KEY_BLOCK


class RunPodVariables(ProcessVariables):
    gpu_types: list[str] = Field(default_factory=lambda: list(DEFAULT_GPU_TYPES), min_length=1,
                                 title="GPU types", description="RunPod GPU type ids, tried in this order "
                                 "(the first with capacity wins).")
    cloud_type: Literal["SECURE", "COMMUNITY"] = Field(DEFAULT_CLOUD_TYPE, description="SECURE or COMMUNITY.")
    # not `image`: `prefect deploy` takes a work pool's `image` job variable for a container image and
    # points the run's working directory into it (/opt/prefect), away from this checkout
    pod_image: str = Field(DEFAULT_IMAGE, pattern=IMAGE_REFERENCE, max_length=255,
                           description="Container image of the pods (Python and a CUDA torch; moola installs the "
                           "rest, pinned, on first use).")
    volume_gb: int = Field(DEFAULT_VOLUME_GB, ge=0, description="Persistent volume per pod at /workspace, GB "
                           "(0: none; a volume bills $0.20/GB/month until the pod is terminated).")
    pods: int = Field(1, ge=1, le=16, description="Pods per flow run: the gates are spread over them, one "
                      "gate per pod at a time (a pod lost mid-gate: the gate moves to another).")
    pod_deadline_s: float = Field(POD_DEADLINE_S, gt=0, description="Give up (run Failed, no pod left) when "
                                  "no GPU type had capacity for this long.")
    max_usd: Optional[float] = Field(DEFAULT_MAX_USD, gt=0, allow_inf_nan=False, title="Budget (USD)",
                                     description="Estimated spend per run (cost/hour x uptime, all pods) at which "
                                     "the pods are ended and the run fails. Empty: no cap.")
    gate_timeout_s: Optional[float] = Field(GATE_TIMEOUT_S, gt=0, allow_inf_nan=False, title="Gate time limit (s)",
                                            description="A gate still running on its pod after this long is ended "
                                            "there and the run fails (a hung gate bills while the heartbeats go "
                                            "on). Empty: none.")
    idle_stop_s: float = Field(IDLE_STOP_S, ge=MIN_IDLE_STOP_S, allow_inf_nan=False,
                               description="A pod stops itself when this worker's heartbeats stopped for this "
                               f"long (the worker's machine died); at least {MIN_IDLE_STOP_S} s, so a slow "
                               "heartbeat never ends a healthy pod.")
    keep_alive: bool = Field(False, description="Leave the pods running after the run (billed).")
    api_key_secret: str = Field(API_KEY_BLOCK, description="Prefect Secret block with the RunPod API key, "
                                "used when RUNPOD_API_KEY is not set on the worker's machine.")


class RunPodWorkerResult(ProcessWorkerResult):
    """The flow process's exit, after every pod was stopped."""


class _Started:
    """Forwards the process id to Prefect as ``host:pid`` (the run's infrastructure_pid) and keeps it."""

    def __init__(self, task_status):
        self.task_status, self.pid = task_status, None

    def started(self, value=None):
        self.pid = value
        self.task_status.started(f"{socket.gethostname()}:{value}")


def leases_dir(settings) -> Path:
    # absolute: the run's process gets these paths and may start in another folder
    return (Path(settings.moola_artifacts) / "pods" / "worker").absolute()


def _alive(pid: int) -> bool:
    """Whether the process runs (an exited child that was not reaped yet counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill(pid: int | None, grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; a process that is gone is fine."""
    if not pid:
        return
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        # polled, not proc.wait(): for the worker's own child that would reap it under the event
        # loop's feet (its exit status is the run's)
        t_end = time.monotonic() + grace_s
        while time.monotonic() < t_end and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            proc.kill()
    except psutil.NoSuchProcess:
        pass


def preflight(params: dict) -> list[str]:
    """Gate 0 of the run's data on this machine, before any pod: its problems (none: go on)."""
    if not params.get("data"):
        return ["the run has no `data` parameter"]
    for key in ("data", "unlabeled"):  # read from here, as the run's process will read them
        if params.get(key) and not Path(params[key]).is_absolute() and not Path(params[key]).exists():
            return [f"{key}: {params[key]} not found relative to {Path.cwd()} (start the worker in the checkout "
                    "the deployment was made from, or pass an absolute path)"]
    from moola.data.validate import validate  # pandas: loaded when a run is checked, not by every Prefect process
    try:
        cfg = DataConfig(**{k: params[k] for k in ("val_size", "folds") if params.get(k) is not None})
        return validate(params["data"], params.get("unlabeled"), cfg).problems
    except DataError as exc:
        return list(exc.problems)
    except (MoolaError, ValueError, OSError) as exc:
        return [f"{type(exc).__name__}: {exc}"]


class RunPodWorker(ProcessWorker):
    type = "runpod"
    job_configuration = RunPodJobConfiguration
    job_configuration_variables = RunPodVariables
    _description = ("Runs each flow run as a local process with RunPod GPU pods it acquires first and stops "
                    "when the process exits, however it exits (moola).")
    _display_name = "RunPod (moola)"
    _documentation_url = "https://github.com/moola/moola#run-it-for-real"

    async def setup(self) -> None:
        await super().setup()
        await self._stop_orphans()

    async def _api(self, settings, secret_block: str):
        return await anyio.to_thread.run_sync(run_api, settings, secret_block)

    def _fleet(self, api, settings, cfg: RunPodJobConfiguration, run_id: str) -> Fleet:
        spec = pod_spec(settings, gpu_types=list(cfg.gpu_types), image=cfg.pod_image, cloud_type=cfg.cloud_type,
                        volume_gb=cfg.volume_gb, name=f"moola-{run_id}", idle_stop_s=cfg.idle_stop_s)
        return Fleet(api, spec, cfg.pods, leases_dir(settings), run_id, cfg.pod_deadline_s, cfg.keep_alive,
                     cfg.idle_stop_s, make_ssh=lambda host, port, key: make_runner("ssh", settings, (host, port),
                                                                                   host_key=key),
                     # a restarted worker (or kill_infrastructure) finds the key where this one did
                     record_extra={"api_key_secret": cfg.api_key_secret}, max_usd=cfg.max_usd)

    async def run(self, flow_run, configuration: RunPodJobConfiguration, task_status=None) -> RunPodWorkerResult:
        task_status = task_status or anyio.TASK_STATUS_IGNORED
        log = self.get_flow_run_logger(flow_run)
        runner = (flow_run.parameters or {}).get("runner")
        if runner != "runpod":  # a run on this machine (or a fixed ssh host) is a plain process run
            log.info("runner %r: this run needs no pod", runner)
            return await ProcessWorker.run(self, flow_run, configuration, _Started(task_status))

        def logged(fn):  # moola's own lines (capacity retries, pod events) in the run's log
            def call():
                with moola_logs_to(log):
                    return fn()
            return call

        problems = await anyio.to_thread.run_sync(preflight, flow_run.parameters or {})
        if problems:  # before any pod exists: bad data costs nothing
            message = "no pod created: the run's data does not pass Gate 0: " + "; ".join(problems[:10])
            log.error(message)
            await self._fail(flow_run.id, message)
            task_status.started(None)
            return RunPodWorkerResult(status_code=0, identifier="")
        fleet = None
        try:
            settings = load_settings()
            fleet = self._fleet(await self._api(settings, configuration.api_key_secret), settings, configuration,
                                str(flow_run.id))
            log.info("acquiring %d pod(s): %s, %s cloud, deadline %.0f s%s", configuration.pods,
                     " > ".join(configuration.gpu_types), configuration.cloud_type, configuration.pod_deadline_s,
                     f", budget ${configuration.max_usd:g}" if configuration.max_usd else "")
            await anyio.to_thread.run_sync(logged(fleet.acquire))
            await anyio.to_thread.run_sync(logged(fleet.guard))
        except MoolaError as exc:
            with anyio.CancelScope(shield=True):
                if fleet is not None:
                    await anyio.to_thread.run_sync(logged(fleet.release))
                message = f"no pods: {exc}"
                log.error(message)
                await self._fail(flow_run.id, message)
            task_status.started(exc)  # nothing started: no infrastructure id to record
            return RunPodWorkerResult(status_code=0, identifier="")
        except BaseException:
            with anyio.CancelScope(shield=True):
                if fleet is not None:
                    await anyio.to_thread.run_sync(logged(fleet.release))
            raise

        configuration.env[HANDOVER_ENV] = json.dumps([p.model_dump(mode="json") for p in fleet.handover()])
        # the run stops a pod it finds lost itself: it needs the API key from where the worker got it
        configuration.env[KEY_SECRET_ENV] = configuration.api_key_secret
        if configuration.gate_timeout_s:  # the run's ssh runners end a gate on its pod past this
            configuration.env["MOOLA_GATE_TIMEOUT_S"] = f"{configuration.gate_timeout_s:g}"
        started, over = _Started(task_status), {}
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch, fleet, configuration, started, over, log)
                result = await ProcessWorker.run(self, flow_run, configuration, started)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):  # also when the worker itself is being stopped
                released = await anyio.to_thread.run_sync(logged(fleet.release))
                spent = sum(r["cost_usd"] for r in released)
                log.info("pods ended: %s; $%.4f in all", ", ".join(
                    f"{r['pod_id']} ({r.get('gpu_type') or '?'}) {r['uptime_s']:.0f} s "
                    + (r.get("ended") or "ended" if r["stopped"] else "LEFT RUNNING") for r in released) or "none",
                    spent)
                self._record(flow_run, settings, released, over.get("message"))
                if over:  # again: the executor may have reported the killed process as crashed meanwhile
                    await self._fail(flow_run.id, over["message"], force=True)
        return RunPodWorkerResult(status_code=result.status_code, identifier=result.identifier)

    async def _watch(self, fleet: Fleet, cfg: RunPodJobConfiguration, started: _Started, over: dict, log) -> None:
        """Heartbeats to every pod, and the budget, while the flow's process runs."""
        every = beat_every(cfg.idle_stop_s)
        next_beat = time.monotonic() + every
        beating: threading.Thread | None = None  # heartbeats in their own thread: a hung pod never holds
        # up the budget, cancellation and process-exit checks below
        while True:
            await anyio.sleep(WATCH_S)
            try:
                state = (await self.client.read_flow_run(fleet.run_id)).state
            except Exception:  # the API is briefly unreachable: the other checks still run
                state = None
            if state is not None and state.is_cancelling():
                # cancelled from the UI: the pods stop now; Prefect's runner stops the process, and
                # if it has not after a grace period (it can miss the cancellation), we do
                log.info("the run is being cancelled: stopping its pods")
                await anyio.to_thread.run_sync(fleet.release)
                await anyio.sleep(CANCEL_GRACE_S)
                if started.pid and _alive(int(started.pid)):
                    log.warning("the cancelled run's process still runs after %.0f s: stopping it", CANCEL_GRACE_S)
                    await anyio.to_thread.run_sync(_kill, int(started.pid))
                    await self._cancelled(fleet.run_id)
                return
            why = None if over else fleet.over_budget()
            if why:
                over["message"] = f"{why}; the run was stopped and its pods with it"
                log.error(over["message"])
                # the run is Failed before its process dies, so it never reads as a crash
                await self._fail(fleet.run_id, over["message"], force=True)
            if over and started.pid and not over.get("killed"):  # the process may not have started yet
                over["killed"] = True
                await anyio.to_thread.run_sync(_kill, started.pid)
            if started.pid and not _alive(int(started.pid)):
                # the process is gone (SIGKILL, OOM, cancelled, done): stop the pods now, not when
                # Prefect has finished reporting on it
                await anyio.to_thread.run_sync(fleet.release)
                return
            if time.monotonic() >= next_beat:
                if beating is None or not beating.is_alive():  # the last round still running: skip one
                    beating = threading.Thread(target=fleet.heartbeat, name="heartbeats", daemon=True)
                    beating.start()
                next_beat = time.monotonic() + every

    async def _cancelled(self, flow_run_id) -> None:
        """Cancelled, if the run is still Cancelling (what Prefect's runner does once it stopped it)."""
        from prefect.states import Cancelled
        try:
            fr = await self.client.read_flow_run(flow_run_id)
            if fr.state is not None and fr.state.is_cancelling():
                await self.client.set_flow_run_state(flow_run_id, Cancelled(message="cancelled; its pods were "
                                                                            "stopped, then its process"), force=True)
        except Exception as exc:
            self._logger.error("could not mark flow run %s Cancelled: %s", flow_run_id, exc)

    async def _fail(self, flow_run_id, message: str, force: bool = False) -> None:
        from prefect.states import Failed
        try:
            await self.client.set_flow_run_state(flow_run_id, Failed(message=message), force=force)
        except Exception as exc:  # the pods are already stopped; the state is the lesser loss
            self._logger.error("could not mark flow run %s Failed (%s): %s", flow_run_id, exc, message)

    def _record(self, flow_run, settings, released: list[dict], over: str | None) -> None:
        """The run's pods, GPU types, uptime and cost in experiment_results.jsonl of the run's registry."""
        try:
            reg = registry_from_settings(settings, root=(flow_run.parameters or {}).get("artifacts"))
            reg.append({"kind": "pods", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "flow_run_id": str(flow_run.id), "flow_run": flow_run.name, "pods": released,
                        "cost_usd": round(sum(r["cost_usd"] for r in released), 6), "budget_stop": over})
        except MoolaError as exc:
            self._logger.error("could not record the pods of flow run %s: %s", flow_run.id, exc)

    async def kill_infrastructure(self, infrastructure_pid: str, configuration: RunPodJobConfiguration,
                                  grace_seconds: int = 30) -> None:
        """Cancelling a run this worker did not start (or no longer tracks): its process, if on this
        machine, and its pods, from their lease records."""
        host, _, pid = str(infrastructure_pid).rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            await anyio.to_thread.run_sync(_kill, int(pid), float(grace_seconds))
        run_id = (configuration.env or {}).get("PREFECT__FLOW_RUN_ID")
        if run_id:
            await self._release_records(run_id)

    async def _release_records(self, run_id: str) -> list[dict]:
        settings = load_settings()
        paths = run_records(leases_dir(settings)).get(run_id)
        if not paths:
            return []
        # the API key from where the run's own worker found it (its api_key_secret job variable)
        api = await self._api(settings, record_field(paths, "api_key_secret") or API_KEY_BLOCK)
        return await anyio.to_thread.run_sync(release_run, api, PodSpec(gpu_types=list(DEFAULT_GPU_TYPES)), paths)

    async def _stop_orphans(self) -> None:
        """At start: end the pods of runs that ended (or were cancelled, or are gone from the server)
        while no worker watched them, of runs whose worker died before they started (Pending,
        Scheduled: nothing will ever start them; they are marked Failed), and every pod whose owner
        is gone before its watchdog was verified (nothing else would ever end it). The guarded pods
        of a run still running are left to it and to their watchdogs. Only ObjectNotFound means a
        run is gone: any other API error leaves its pods be. Then the account's own list: a pod
        named after a run of this server that is over, with no record here, is ended too."""
        try:
            runs = run_records(leases_dir(load_settings()))
        except MoolaError as exc:
            self._logger.error("cannot look for pods left by an earlier worker: %s", exc)
            return
        for run_id, paths in runs.items():
            state = await self._run_state(run_id)
            if state is False:
                continue
            owner_gone = not owner_alive(record_field(paths, "owner"))
            unguarded = owner_gone and not all(_read(p).get("guarded") for p in paths)
            if state is not None and (state.is_pending() or state.is_scheduled()) and owner_gone:
                await self._fail(UUID(run_id), "its worker died while acquiring its pods; they were ended")
            elif state is not None and not (state.is_final() or state.is_cancelling()) and not unguarded:
                self._logger.warning("flow run %s is %s without its worker; its pods end themselves after their "
                                     "idle time unless it ends first", run_id, state.name)
                continue
            try:
                ended = await self._release_records(run_id)
                self._logger.warning("ended %d pod(s) left by flow run %s (%s%s)", len(ended), run_id,
                                     state.name if state else "gone", ", never guarded" if unguarded else "")
            except MoolaError as exc:
                self._logger.error("pods of flow run %s could not be ended: %s", run_id, exc)
        await self._reconcile_by_name()

    async def _run_state(self, run_id: str):
        """The run's state; None when the server says it does not exist (ObjectNotFound); False when
        it cannot say (the API's own trouble, or not a run id): then nothing is done to its pods."""
        from prefect.exceptions import ObjectNotFound
        try:
            return (await self.client.read_flow_run(UUID(run_id))).state
        except ObjectNotFound:
            return None
        except Exception as exc:
            self._logger.warning("flow run %s: cannot read its state (%s); its pods are left to their "
                                 "watchdogs", run_id, exc)
            return False

    async def _reconcile_by_name(self) -> None:
        """The pods of the account named ``moola-<flow run id>-<i>`` that no lease record here owns
        (the record lost, or never written): ended when that run of this server is over. A run this
        server does not know may be another server's: left, named in the log (``moola pods clean``)."""
        settings = load_settings()
        try:
            api = await self._api(settings, API_KEY_BLOCK)
            listed = await anyio.to_thread.run_sync(moola_pods, api, Path(settings.moola_artifacts))
        except Exception as exc:  # no key on this machine, or the API down: the records were handled
            self._logger.info("RunPod pods not listed at start (%s): only lease records were checked", exc)
            return
        ended = []
        for pod in listed:
            if pod["owned"] or pod["record"]:
                continue
            run_id = str(pod["name"])[len(NAME_PREFIX):len(NAME_PREFIX) + 36]
            state = await self._run_state(run_id) if _is_uuid(run_id) else False
            if state is None or state is False:
                self._logger.warning("pod %s (%s) has no lease record and no run of this server; `moola pods "
                                     "clean` ends it", pod["pod_id"], pod["name"])
            elif state.is_final():
                ended.append(pod)
        for done in await anyio.to_thread.run_sync(clean, api, ended) if ended else []:
            self._logger.warning("pod %s of an ended run, with no lease record: %s", done["pod_id"], done["ended"])


def _read(path: Path) -> dict:
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
        return True
    except ValueError:
        return False

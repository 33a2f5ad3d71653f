"""Thin Prefect tasks over moola's Runner and registry."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError

from flows.report import publish_gate
from moola.errors import RemoteUnavailable
from moola.gates.result import read_result
from moola.remote.runner import GateCall, make_runner

RETRY_DELAYS = [2, 4, 8, 16, 30, 30, 30, 30]  # capped exponential backoff (seconds)


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger, or a plain one when called outside a run (``task.fn`` in tests)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("flows")


class _ToRunLogger(logging.Handler):
    """Sends this thread's ``moola.*`` records (the pod's streamed log lines) to the task's log."""

    def __init__(self, target):
        super().__init__(logging.INFO)
        self.target, self.thread = target, threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:  # concurrent gates each see only their own lines
            self.target.log(record.levelno, record.getMessage())


_attached = 0
_attach_lock = threading.Lock()


@contextmanager
def moola_logs_in_task():
    """Route ``moola.*`` records into the task's log (and only there, not twice on the console)."""
    global _attached
    moola = logging.getLogger("moola")
    handler = _ToRunLogger(run_logger())
    with _attach_lock:
        if _attached == 0:
            moola.setLevel(logging.INFO)
            moola.propagate = False
        _attached += 1
        moola.addHandler(handler)
    try:
        yield
    finally:
        with _attach_lock:
            moola.removeHandler(handler)
            _attached -= 1
            if _attached == 0:
                moola.setLevel(logging.NOTSET)
                moola.propagate = True


def transient_only(task, task_run, state) -> bool:
    """Retry a gate only when the runner said the remote was unavailable."""
    try:
        state.result()
    except RemoteUnavailable:
        return True
    except Exception:
        return False
    return False


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_jitter_factor=0.2,
      retry_condition_fn=transient_only, task_run_name="gate {gate}")
def run_gate(gate: str, runner: str, data: str, out: str, options: list[str], unlabeled: str | None = None,
             baseline: str | None = None, encoder: str | None = None, config: str | None = None,
             endpoint: list | None = None) -> dict:
    """One gate over the Runner; ``endpoint`` ([host, port]) points the ssh runner at a leased pod."""
    call = GateCall(gate=gate, data=Path(data), out=Path(out), unlabeled=Path(unlabeled) if unlabeled else None,
                    baseline=Path(baseline) if baseline else None, encoder=Path(encoder) if encoder else None,
                    options=tuple(options), config=Path(config) if config else None)
    with moola_logs_in_task():
        if endpoint is not None:
            from moola.settings import Settings
            settings = Settings().model_copy(update={"moola_ssh_host": endpoint[0], "moola_ssh_port": int(endpoint[1])})
            folder = make_runner("ssh", settings).run_gate(call)
        else:
            folder = make_runner(runner).run_gate(call)
    res = read_result(folder)
    publish_gate(gate, res, folder)
    return {"dir": str(folder), "result": res.model_dump(mode="json")}

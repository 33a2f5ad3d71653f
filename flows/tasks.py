"""Thin Prefect tasks over moola's Runner and registry."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from moola_flows.report import publish_gate
from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError

from moola.core.errors import RemoteUnavailable
from moola.gates.call import GateCall
from moola.gates.result import GateOutcome
from moola.pods.fleet import Pod
from moola.pods.runner import make_runner
from moola.remote.kinds import ON_THIS_MACHINE
from moola.settings import load_settings

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


def moola_logs_in_task():
    """Route ``moola.*`` records into the task's log (and only there, not twice on the console)."""
    return moola_logs_to(run_logger())


@contextmanager
def moola_logs_to(target):
    """Route this thread's ``moola.*`` records to ``target`` (a run's logger) while inside."""
    global _attached
    moola = logging.getLogger("moola")
    handler = _ToRunLogger(target)
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
      retry_condition_fn=transient_only, task_run_name="gate {call.gate}")
def run_gate(call: GateCall, runner: str, pod: Pod | None = None) -> GateOutcome:
    """One gate over the Runner; ``pod`` (a ready pod, flows/pod.py) points the ssh runner at it."""
    with moola_logs_in_task():
        settings = None if runner in ON_THIS_MACHINE else load_settings()
        folder = make_runner(runner, settings, endpoint=pod.address if pod else None, site=pod.site if pod else None,
                             host_key=pod.host_key if pod else None).run_gate(call)
    out = GateOutcome.read(folder)
    publish_gate(call.gate, out.result, folder)
    return out

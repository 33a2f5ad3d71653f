"""The Runner interface: one typed gate call in, a local folder of verified outputs out.

    make_runner(kind).run_gate(GateCall) -> Path

``InProcessRunner`` (``here``) calls the gate function in this process with the call's typed
values; ``LocalRunner`` (``local``) runs ``moola gate run`` in a subprocess; ``SSHRunner``
(ssh.py) runs it on a host over SSH and fetches the folder back; ``RunPodRunner`` (runpod.py)
acquires a pod first. The runner names live in kinds.py.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError
from ..modelfile import verify_folder
from .call import GateCall, raise_for_exit
from .kinds import check_runner
from .retry import call_with_retry

log = logging.getLogger("moola.remote")


class Runner(Protocol):
    def run_gate(self, call: GateCall) -> Path: ...


class LocalRunner:
    """Runs the gate in a subprocess of this machine's Python."""

    def __init__(self, python: str = sys.executable):
        self.python = python

    def run_gate(self, call: GateCall) -> Path:
        argv = [self.python, "-m", "moola.cli", *call.argv(call.local_paths(), str(call.out))]
        log.info("local: %s", " ".join(argv[3:]))
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        for line in proc.stdout:
            log.info("[%s] %s", call.gate, line.rstrip())
            tail = (tail + [line.rstrip()])[-40:]
        code = proc.wait()
        raise_for_exit(code, call.gate, "\n".join(tail))
        verify_folder(call.out)
        return call.out


class InProcessRunner:
    """Runs the gate in this process (no interpreter start-up per gate); errors propagate as is."""

    def run_gate(self, call: GateCall) -> Path:
        from ..config import load_gate_config
        from ..gates.run import run_gate
        cfg = load_gate_config(call.preset, call.config, call.seed)
        run_gate(call.gate, call.data, call.out, cfg, call.data_config, call.device, call.unlabeled,
                 call.baseline, call.encoder)  # passed / failed are results; DataError and crashes raise
        verify_folder(call.out)
        return call.out


def make_runner(kind: str, settings=None, endpoint: tuple[str, int] | None = None, site: str | None = None,
                host_key: str | None = None) -> Runner:
    """The runner of ``kind``; ``endpoint`` (host, port) points an ssh runner at a leased pod, whose
    pinned packages are in ``site`` (moola.remote.podenv) and whose host key, when moola created it,
    is ``host_key`` (the only key accepted for it)."""
    check_runner(kind)
    if kind == "here":
        return InProcessRunner()
    if kind == "local":
        return LocalRunner()
    from ..settings import load_settings
    from .ssh import SSHRunner
    s = settings or load_settings()
    if endpoint is not None or kind == "ssh":
        if endpoint is not None:  # a pod: its own address, key and interpreter
            s = s.model_copy(update={"moola_ssh_host": endpoint[0], "moola_ssh_port": int(endpoint[1]),
                                     "moola_remote_python": s.moola_pod_python})
            if host_key:  # pinned alone: known_hosts and fingerprints are for hosts moola did not make
                s = s.model_copy(update={"moola_ssh_known_hosts": None, "moola_ssh_host_key_sha256": None})
        runner = SSHRunner.from_settings(s, host_key=host_key)
        runner.site = site
        return runner
    import uuid

    from .pods import RunPodRunner
    from .runpod import make_lease
    record = s.moola_artifacts / "pods" / f"cli-{uuid.uuid4().hex[:12]}.json"  # found there if we die
    return RunPodRunner(make_lease(s), lambda host, port, key: make_runner("ssh", s, (host, port), host_key=key), record)


def run_call(kind: str, call: GateCall, retry_for: float = 0.0) -> Path:
    """Run ``call`` with the runner of ``kind``, retrying transient errors for ``retry_for`` s."""
    if not 0 <= retry_for < float("inf"):  # nan and inf too: either would retry forever
        raise ConfigError(f"--retry-for {retry_for}: expected 0 or more seconds")
    runner = make_runner(kind)
    return call_with_retry(lambda: runner.run_gate(call), retry_for=retry_for)

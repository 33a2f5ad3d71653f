"""The Runner interface: one typed gate call in, a local folder of verified outputs out.

    runner.run_gate(GateCall) -> Path        (moola.pods.runner.make_runner(kind) picks one)

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

from moola.core.seal import verify_folder
from moola.gates.call import GateCall, raise_for_exit

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
        from moola.gates.config import load_gate_config
        from moola.gates.run import run_gate
        cfg = load_gate_config(call.preset, call.config, call.seed)
        run_gate(call.gate, call.data, call.out, cfg, call.data_config, call.device, call.unlabeled,
                 call.baseline, call.encoder)  # passed / failed are results; DataError and crashes raise
        verify_folder(call.out)
        return call.out


def on_this_machine(kind: str) -> Runner:
    """``here`` (this process) or ``local`` (a subprocess). The other kinds: moola.pods.runner."""
    return InProcessRunner() if kind == "here" else LocalRunner()

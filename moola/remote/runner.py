"""The Runner interface: one gate invocation in, a local folder of verified outputs out.

    runner.run_gate(GateCall) -> Path

``LocalRunner`` runs ``moola gate run`` in a subprocess on this machine (the embedded
default); ``SSHRunner`` (ssh.py) runs it on a host over SSH and fetches the folder back.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError, DataError, GateCrashed
from ..modelfile import verify_folder

log = logging.getLogger("moola.remote")


@dataclass(frozen=True)
class GateCall:
    """One gate invocation: files by role, plain options, and where the result must land."""

    gate: str
    data: Path
    out: Path
    unlabeled: Path | None = None
    baseline: Path | None = None   # a local gate folder; shipped to the remote when needed
    encoder: Path | None = None
    options: tuple[str, ...] = field(default_factory=tuple)  # e.g. ("--val-size", "0.2", "--seed", "17")
    config: Path | None = None

    def local_paths(self) -> dict[str, str]:
        """Paths by role as given, for runners on this machine."""
        roles = ("data", "unlabeled", "baseline", "encoder", "config")
        return {r: str(getattr(self, r)) for r in roles if getattr(self, r) is not None}

    def argv(self, paths: dict[str, str], out: str) -> list[str]:
        """The ``moola gate run`` argv with the given (local or remote) paths."""
        argv = ["gate", "run", self.gate, "--data", paths["data"], "--out", out, "--runner", "here"]
        for role in ("unlabeled", "baseline", "encoder", "config"):
            if role in paths:
                argv += [f"--{role}", paths[role]]
        return argv + list(self.options)


class Runner(Protocol):
    def run_gate(self, call: GateCall) -> Path: ...


def raise_for_exit(code: int, gate: str, tail: str) -> None:
    """Map ``moola gate run`` exit codes: 0 passed / 3 failed are results; 2 and 1 are errors."""
    if code in (0, 3):
        return
    if code == 2:
        # the CLI prints one problem per line, indented under "error: ..."
        raise DataError([line.strip() for line in tail.splitlines() if line.startswith("  ")]
                        or [f"gate {gate}: invalid data or usage (exit 2)"])
    raise GateCrashed(f"gate {gate} crashed (exit {code}); last lines of its log:\n{tail}")


class LocalRunner:
    """Runs the gate in a subprocess of this machine's Python."""

    def __init__(self, python: str = sys.executable):
        self.python = python

    def run_gate(self, call: GateCall) -> Path:
        paths = call.local_paths()
        argv = [self.python, "-m", "moola.cli", *call.argv(paths, str(call.out))]
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
        from ..cli import build_parser
        paths = call.local_paths()
        args = build_parser().parse_args(call.argv(paths, str(call.out)))
        args.func(args)  # exit 0 / 3 are results; DataError and crashes raise
        verify_folder(call.out)
        return call.out


def make_runner(kind: str, settings=None) -> Runner:
    if kind == "here":
        return InProcessRunner()
    if kind == "local":
        return LocalRunner()
    if kind in ("ssh", "runpod"):
        from ..settings import Settings
        s = settings or Settings()
        from .ssh import SSHRunner
        if kind == "ssh":
            return SSHRunner.from_settings(s)
        from .runpod import RunPodRunner, make_lease
        lease = make_lease(s)
        make_ssh = lambda host, port: SSHRunner.from_settings(  # noqa: E731
            s.model_copy(update={"moola_ssh_host": host, "moola_ssh_port": port}))
        return RunPodRunner(lease, make_ssh)
    raise ConfigError(f"runner: expected local, ssh or runpod, found {kind!r}")

"""The runner for a kind: ``here`` and ``local`` on this machine, ``ssh`` on a host, ``runpod`` on a
pod acquired for the call (and stopped after it). The runner names live in moola/remote/kinds.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from moola.gates.call import GateCall
from moola.pods.api import make_lease
from moola.pods.lease import RunPodRunner
from moola.remote.kinds import ON_THIS_MACHINE, check_runner
from moola.remote.retry import call_with_retry, check_retry_for
from moola.remote.runner import Runner, on_this_machine
from moola.remote.ssh import SSHRunner

if TYPE_CHECKING:  # settings sit above this package (built at entry points, handed down)
    from moola.settings import Settings


def make_runner(kind: str, settings: Settings | None = None, endpoint: tuple[str, int] | None = None, site: str | None = None,
                host_key: str | None = None) -> Runner:
    """The runner of ``kind``; ``endpoint`` (host, port) points an ssh runner at a leased pod, whose
    pinned packages are in ``site`` (moola.pods.env) and whose host key, when moola created it,
    is ``host_key`` (the only key accepted for it). ``settings``: the orchestrator's (built at the
    entry point), needed by every kind but those on this machine."""
    if check_runner(kind) in ON_THIS_MACHINE:
        return on_this_machine(kind)
    if settings is None:
        raise ValueError(f"the {kind} runner needs the orchestrator's settings (moola.settings.load_settings())")
    s = settings
    if endpoint is not None or kind == "ssh":
        if endpoint is not None:  # a pod: its own address, key and interpreter
            s = s.model_copy(update={"moola_ssh_host": endpoint[0], "moola_ssh_port": int(endpoint[1]),
                                     "moola_remote_python": s.moola_pod_python})
            if host_key:  # pinned alone: known_hosts and fingerprints are for hosts moola did not make
                s = s.model_copy(update={"moola_ssh_known_hosts": None, "moola_ssh_host_key_sha256": None})
        runner = SSHRunner.from_settings(s, host_key=host_key)
        runner.site = site
        return runner
    record = s.moola_artifacts / "pods" / f"cli-{uuid.uuid4().hex[:12]}.json"  # found there if we die
    return RunPodRunner(make_lease(s), lambda host, port, key: make_runner("ssh", s, (host, port), host_key=key), record)


def run_call(kind: str, call: GateCall, settings: Settings | None, retry_for: float = 0.0) -> Path:
    """Run ``call`` with the runner of ``kind``, retrying transient errors for ``retry_for`` s."""
    runner = make_runner(kind, settings)
    return call_with_retry(lambda: runner.run_gate(call), retry_for=check_retry_for(retry_for))

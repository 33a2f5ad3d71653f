"""The names of the runners, declared once: Settings, the CLI, the flows and the deployments use these.

    here    this process (no interpreter start-up per gate; the embedded default)
    local   a subprocess of this machine's Python
    ssh     a host reached over SSH (MOOLA_SSH_*)
    runpod  a RunPod pod, then SSH to it (RUNPOD_*)
"""

from __future__ import annotations

from typing import Literal, get_args

from moola.core.errors import ConfigError

RunnerKind = Literal["here", "local", "ssh", "runpod"]
RUNNER_KINDS: tuple[str, ...] = get_args(RunnerKind)
DEFAULT_RUNNER: RunnerKind = "here"
ON_THIS_MACHINE: tuple[str, ...] = ("here", "local")  # gates share this machine's cores: run one at a time


def check_runner(kind: str) -> str:
    """``kind`` if it names a runner, else a ConfigError listing the choices."""
    if kind not in RUNNER_KINDS:
        raise ConfigError(f"runner: expected one of {', '.join(RUNNER_KINDS)}, found {kind!r}")
    return kind

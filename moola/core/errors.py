"""The one exception tree of moola.

    MoolaError
    ├── DataError            invalid input data (exit code 2); carries one line per problem
    ├── ConfigError          invalid configuration or command-line usage (exit code 2)
    ├── ModelFileError       a model file failed its integrity check or does not fit
    ├── RegistryError        registry.json unreadable or not a registry (exit code 2)
    │   └── RegistryBusy     the registry lock stayed held past its timeout (exit code 1)
    ├── GateCrashed          a gate died unexpectedly (exit code 1)
    └── RemoteError          anything on the way to or from a remote runner
        ├── RemoteUnavailable    transient: refused, reset, timeout, no capacity, pod not up yet
        │   └── NoCapacity       RunPod has no GPU of the requested type (nothing was created)
        └── RemotePermanent      not worth retrying: auth, host key, missing dependency, gate crash
            ├── HostKeyMismatch  the server's key is unknown or changed
            ├── PodsLost         every pod of a run was lost before its units finished
            └── GateTimedOut     a gate on a remote host ran past its time limit (ended there)

Third-party errors (pyarrow, paramiko, runpod) are converted at the boundary with
``raise ... from exc`` so callers only ever catch these.
"""

from __future__ import annotations

# Exit codes, the one table: `moola --help` prints it, every error class carries one, and a runner
# reads a gate's exit code back with it (moola.gates.call.raise_for_exit).
EXIT_OK, EXIT_INFRA, EXIT_INVALID, EXIT_GATE_FAILED = 0, 1, 2, 3
EXIT_CODES = {EXIT_OK: "done", EXIT_INVALID: "usage, configuration or invalid input (one line per problem)",
              EXIT_GATE_FAILED: "a gate ran and failed its criteria",
              EXIT_INFRA: "infrastructure (disk, network, remote host, the registry's own files) or an internal error"}
PROBLEM_INDENT = "  "  # under "error: <kind>", one line per problem


def error_lines(kind: str, problems: list[str]) -> list[str]:
    """What the `moola` command prints for an error: its kind, then one indented line per problem."""
    return [f"error: {kind}", *(PROBLEM_INDENT + line for line in problems)]


def problems_in(output: str) -> list[str]:
    """The problems of error_lines() read back from a command's output (a gate run elsewhere)."""
    return [line.strip() for line in output.splitlines() if line.startswith(PROBLEM_INDENT)]


class MoolaError(Exception):
    """Base of every error moola raises on purpose."""

    exit_code = EXIT_INFRA


class DataError(MoolaError):
    """Input data breaks the contract. ``problems`` holds one human-readable line each."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(MoolaError):
    """A configuration value or command-line option is invalid."""

    exit_code = EXIT_INVALID


class ModelFileError(MoolaError):
    """A model file is missing, altered (checksum) or does not match the model."""


class RegistryError(MoolaError):
    """The registry's files are damaged or cannot be written; the old state is kept. Exit 1: the
    registry is moola's own state (infrastructure), not the user's input."""

    exit_code = EXIT_INFRA


class RegistryBusy(RegistryError):
    """Another process held the registry lock for longer than the timeout."""

    exit_code = EXIT_INFRA


class GateCrashed(MoolaError):
    """A gate failed for a reason that is not the data's fault."""


class RemoteError(MoolaError):
    """Base of errors met while running a gate somewhere else."""


class RemoteUnavailable(RemoteError):
    """Transient: the host or pod is not reachable yet. Worth retrying."""


class NoCapacity(RemoteUnavailable):
    """RunPod answered that it has no capacity: the request was refused, so no pod exists for it
    (unlike a lost answer, after which a pod may exist)."""


class RemotePermanent(RemoteError):
    """Permanent: retrying will not help (credentials, host key, broken remote)."""


class HostKeyMismatch(RemotePermanent):
    """The server presented a host key that is not the pinned or known one."""


class PodsLost(RemotePermanent):
    """Every pod of the run was lost (unreachable or stopped) with units still to run."""


class GateTimedOut(RemotePermanent):
    """A gate on a remote host ran past MOOLA_GATE_TIMEOUT_S and was ended there (a hung gate
    would otherwise bill a pod for as long as the worker's heartbeats keep its watchdog quiet)."""


def config_error(exc, where: str = "", flags: bool = False) -> ConfigError:
    """One ConfigError line per problem of a pydantic ``ValidationError`` (the one conversion).

    ``where`` prefixes each line (a file name); ``flags`` names fields as command-line options
    (``val_size`` -> ``--val-size``)."""
    lines = []
    for e in exc.errors():
        loc = ".".join(map(str, e["loc"]))
        name = "--" + loc.replace("_", "-") if flags else loc
        lines.append(f"{where}{name}: {e['msg']}")
    err = ConfigError("\n".join(lines))
    err.problems = lines
    return err

"""One gate invocation as a typed value, and how ``moola gate run`` exit codes map to errors.

A flow or the CLI builds a ``GateCall`` (gate, files by role, data config, preset, seed,
device, output folder); a runner that crosses a process boundary turns it into argv once,
with :meth:`GateCall.argv`, and that process parses it once, in ``moola.cli.main``. The
in-process runner passes the typed values straight to the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from moola.core.errors import EXIT_GATE_FAILED, EXIT_INVALID, EXIT_OK, DataError, GateCrashed, problems_in
from moola.data.config import DataConfig

ROLES = ("data", "unlabeled", "baseline", "encoder", "config")


@dataclass(frozen=True)
class GateCall:
    gate: str
    data: Path
    out: Path
    unlabeled: Path | None = None
    baseline: Path | None = None   # a local gate folder; shipped to the remote when needed
    encoder: Path | None = None
    config: Path | None = None     # JSON or TOML overrides of the gate config
    data_config: DataConfig = field(default_factory=DataConfig)
    preset: str = "default"
    seed: int | None = None
    device: str = "auto"

    def local_paths(self) -> dict[str, str]:
        """Paths by role as given, for runners on this machine."""
        return {r: str(getattr(self, r)) for r in ROLES if getattr(self, r) is not None}

    def argv(self, paths: dict[str, str], out: str) -> list[str]:
        """The ``moola gate run`` argv with the given (local or remote) paths: built here only."""
        d = self.data_config
        argv = ["gate", "run", self.gate, "--data", paths["data"], "--out", out, "--runner", "here",
                "--val-size", str(d.val_size), "--folds", str(d.folds), "--bar-seconds", str(d.bar_seconds),
                "--preset", self.preset, "--device", self.device]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        if d.assume_row_order:
            argv.append("--assume-row-order")
        for role in ROLES[1:]:
            if role in paths:
                argv += [f"--{role}", paths[role]]
        return argv


def raise_for_exit(code: int, gate: str, tail: str) -> None:
    """Map ``moola gate run`` exit codes: 0 passed / 3 failed are results; 2 and 1 are errors."""
    if code in (EXIT_OK, EXIT_GATE_FAILED):
        return
    if code == EXIT_INVALID:
        raise DataError(problems_in(tail) or [f"gate {gate}: invalid data or usage (exit {code})"])
    raise GateCrashed(f"gate {gate} crashed (exit {code}); last lines of its log:\n{tail}")

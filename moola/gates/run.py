"""``run_gate``: the one entry point for every gate, locally or on a pod."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from moola.core.errors import ConfigError, DataError
from moola.core.files import replace_folder
from moola.core.seal import check_replaceable
from moola.data.config import DataConfig
from moola.gates.augment import gate_augment
from moola.gates.baseline import gate_baseline
from moola.gates.config import GateConfig, resolve_budget
from moola.gates.context import environment, finish, prepare
from moola.gates.graph import GATES
from moola.gates.minirocket import gate_minirocket
from moola.gates.pretrain import gate_pretrain
from moola.gates.result import GateResult
from moola.gates.transfer import gate_transfer
from moola.gates.validate import gate_validate
from moola.train.cores import claimed_cores
from moola.train.fit import pick_device

log = logging.getLogger("moola.gates")

# gates 1-5: each a function of the prepared context and the --baseline/--encoder folders
GATE_FUNCTIONS = {"baseline": gate_baseline, "minirocket": gate_minirocket, "pretrain": gate_pretrain,
                  "transfer": gate_transfer, "augment": gate_augment}


def run_gate(gate: str, data: Path, out: Path, cfg: GateConfig, dcfg: DataConfig, device: str = "auto",
             unlabeled: Path | None = None, baseline: Path | None = None,
             encoder: Path | None = None) -> GateResult:
    """Run one gate and write its folder. Raises DataError (exit 2) when the data is invalid.

    The folder is built under a temporary name beside ``out`` and renamed into place only when
    the gate finished (passed or failed its criteria; Gate 0 also when the data is invalid):
    a crash or invalid data leaves no half folder that looks like a result, and files already
    at ``out`` never end up sealed into its MANIFEST."""
    if gate not in GATES:
        raise ConfigError(f"gate: expected one of {', '.join(GATES)}, found {gate!r}")
    out = Path(out)
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        result = _run_into(gate, data, tmp, cfg, dcfg, device, unlabeled, baseline, encoder)
        check_replaceable(out)  # again: someone may have put files there while the gate trained
        replace_folder(tmp, out)
        return result
    except DataError:
        if gate == "validate" and (tmp / "result.json").is_file():
            replace_folder(tmp, out)  # Gate 0's failed result is a result
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was renamed into place


def _run_into(gate: str, data: Path, out: Path, cfg: GateConfig, dcfg: DataConfig, device: str,
              unlabeled: Path | None, baseline: Path | None, encoder: Path | None) -> GateResult:
    t0 = time.perf_counter()
    dev = pick_device(device)
    cfg = resolve_budget(cfg, dev.type)
    if gate == "validate":
        return gate_validate(data, unlabeled, dcfg, cfg, dev, out, t0)
    ctx = prepare(data, unlabeled, dcfg, cfg, dev, out)
    log.info("gate %s (%d) on %s: %d train / %d val, device %s", gate, GATES[gate], data,
             len(ctx.last.y_train), len(ctx.last.y_val), dev)
    # on the CPU the gate holds its cores, so a second gate on this machine queues or shares
    # instead of oversubscribing them (moola/train/cores.py); on a GPU the device does the work
    with claimed_cores() if dev.type == "cpu" else nullcontext() as n:
        if n:
            log.info("gate %s trains on %d core(s)", gate, n)
        result = GATE_FUNCTIONS[gate](ctx, {"baseline": baseline, "encoder": encoder})
    result.total_seconds = time.perf_counter() - t0
    result.environment = environment(dev)
    finish(ctx, result)
    log.info("gate %s %s%s", gate, result.status.upper(), ": " + "; ".join(result.reasons) if result.reasons else "")
    return result

"""Gate 0 as a gate: the data checks of moola.data.validate, written as result.json + manifest.

Invalid data is a result too (status failed, one reason per problem), and still raises
DataError (exit 2) after the folder is written, so a flow stops before any training."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from moola.core.errors import DataError
from moola.core.files import sha256_file
from moola.core.seal import write_manifest
from moola.data.config import DataConfig
from moola.gates.config import GateConfig
from moola.gates.context import DATA_MANIFEST, data_summary, environment, prepare
from moola.gates.result import GateResult


def gate_validate(data: Path, unlabeled: Path | None, dcfg: DataConfig, cfg: GateConfig, dev: torch.device,
                  out: Path, t0: float) -> GateResult:
    try:
        ctx = prepare(data, unlabeled, dcfg, cfg, dev, out)
        reasons, sha = [], ctx.manifest_sha256
    except DataError as exc:
        reasons, ctx, sha = exc.problems, None, sha256_file(out / DATA_MANIFEST)
    result = GateResult(gate="validate", gate_number=0, status="failed" if reasons else "passed",
                        reasons=reasons, config=cfg.model_dump(), data_manifest_sha256=sha,
                        total_seconds=time.perf_counter() - t0, environment=environment(dev))
    if ctx is not None:
        result.data = data_summary(ctx)
    result.write(out)
    write_manifest(out)
    if reasons:
        raise DataError(reasons)
    return result

"""The schema of ``result.json``, written by every gate (pydantic; see README "Gate results").

Exit codes of ``moola gate run``: 0 passed, 3 failed its criteria (result.json still
written), 2 invalid data or usage, 1 internal error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from moola.core.errors import EXIT_GATE_FAILED, EXIT_OK, ModelFileError
from moola.evaluation.paired import PairedEvidence
from moola.gates.graph import GATES, GateName


class Metrics(BaseModel):
    """Validation metrics of one set of predictions (see moola.evaluation.metrics for definitions)."""

    model_config = ConfigDict(extra="forbid")
    n: int
    accuracy: float
    f1_weighted: float
    f1_macro: float
    pr_auc: float | None  # None when the positive class is absent from validation
    brier: float
    ece: float
    ece_bins: int = 15
    log_loss: float
    confusion: list[list[int]]
    classes: list[str]
    predicted_classes: list[str]

    @field_validator("pr_auc", mode="before")
    @classmethod
    def _nan_to_none(cls, v):
        return None if isinstance(v, float) and math.isnan(v) else v


class FoldMetrics(BaseModel):
    fold: int
    train: int
    val: int
    metrics: Metrics | None
    majority_baseline: Metrics
    degenerate: bool


class Comparison(BaseModel):
    """A gate's pooled F1 next to its --baseline folder's; Gate 2 adds the paired evidence on the
    same windows and the control's verdict (moola.gates.verdicts.control_verdict)."""

    model_config = ConfigDict(extra="forbid")
    baseline_f1: float
    f1: float
    delta: float
    baseline: dict | None = None       # the --baseline folder's summary (moola.gates.context.baseline_info)
    evidence: PairedEvidence | None = None
    verdict: Literal["control_wins", "within_noise", "baseline_wins"] | None = None


class GateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    gate: GateName
    gate_number: int
    status: Literal["passed", "failed", "skipped"]  # skipped: the flow had no input for it (no folder)
    reasons: list[str] = []
    metrics: Metrics | None = None
    majority_baseline: Metrics | None = None
    degenerate: bool | None = None
    folds: list[FoldMetrics] | None = None
    pooled: Metrics | None = None      # over every fold's validation windows (walk-forward); the decision's
    comparison: Comparison | None = None  # vs --baseline: f1 values, delta, the control's verdict
    details: dict = {}                 # gate specifics: load proof, probe, augmentation counts, fit history
    model_files: dict[str, str] = {}   # file name -> sha256
    fit_seconds: float = 0.0
    total_seconds: float = 0.0
    environment: dict = {}
    config: dict = {}
    data_manifest_sha256: str | None = None
    data: dict = {}                    # split sizes and class counts

    @classmethod
    def skipped(cls, gate: str, why: str) -> "GateResult":
        """A gate the run could not run for want of its input (gates 3-4 without unlabelled windows)."""
        return cls(gate=gate, gate_number=GATES[gate], status="skipped", reasons=[why])

    @classmethod
    def refused(cls, gate: str, reasons: list[str]) -> "GateResult":
        """A gate that failed before it could write a folder (Gate 0 on invalid data: its problems)."""
        return cls(gate=gate, gate_number=GATES[gate], status="failed", reasons=list(reasons))

    @property
    def headline(self) -> "Metrics | None":
        """The metrics the decision compares: pooled over every walk-forward validation window, else
        the last fold's (a result without folds)."""
        return self.pooled or self.metrics

    def failed_for(self, why: str) -> "GateResult":
        """This result, failed for ``why`` besides its own reasons (a candidate refused at shipping)."""
        return self.model_copy(update={"status": "failed", "reasons": [*self.reasons, why]})

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.status == "passed" else EXIT_GATE_FAILED

    def write(self, folder: Path) -> Path:
        path = folder / "result.json"
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path


class GateOutcome(BaseModel):
    """What a run has of one gate: its result and the folder it wrote (None for a gate that wrote
    none: skipped, or refused before it ran). The value the gates flow hands to the decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    folder: Path | None = None
    result: GateResult

    @classmethod
    def read(cls, folder: str | Path) -> "GateOutcome":
        return cls(folder=Path(folder), result=read_result(folder))


def read_result(folder: str | Path) -> GateResult:
    path = Path(folder) / "result.json"
    try:
        return GateResult.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable gate result ({exc})") from exc

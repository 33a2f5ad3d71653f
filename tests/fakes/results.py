"""Gate results for decision tests: typed, from the few fields a test cares about."""

from __future__ import annotations

from pathlib import Path

from moola.gates.graph import GATES
from moola.gates.result import GateOutcome, GateResult, Metrics

CLASSES = ["consolidation", "retracement"]
GATE0 = GateOutcome(result=GateResult(gate="validate", gate_number=0, status="passed"))


def metrics(f1_weighted: float, n: int = 60, **_) -> Metrics:
    """Metrics with this weighted F1 (the only number the decision ranks on); the rest plausible."""
    return Metrics(n=n, accuracy=f1_weighted, f1_weighted=f1_weighted, f1_macro=f1_weighted, pr_auc=None,
                   brier=0.2, ece=0.05, log_loss=0.6, confusion=[[n // 2, 0], [0, n - n // 2]], classes=CLASSES,
                   predicted_classes=CLASSES)


def gate_result(gate: str, status: str = "passed", metrics: dict | None = None, pooled: dict | None = None,
                **fields) -> GateResult:
    """A result of ``gate`` with ``metrics``/``pooled`` given as {"f1_weighted": f, "n": n}."""
    return GateResult(gate=gate, gate_number=GATES[gate], status=status,
                      metrics=_metrics(metrics), pooled=_metrics(pooled), **fields)


def _metrics(m: dict | None) -> Metrics | None:
    return metrics(**m) if m else None


def typed(results: dict[str, dict]) -> dict[str, GateResult]:
    """{gate: a few fields} as {gate: GateResult}."""
    return {g: gate_result(g, **spec) for g, spec in results.items()}


def ran(folder: str | Path, result: dict | GateResult | None = None) -> GateOutcome:
    """A gate folder and its result (read from the folder unless given)."""
    if result is None:
        return GateOutcome.read(folder)
    return GateOutcome(folder=Path(folder), result=GateResult.model_validate(result))


def without_folders(results: dict[str, dict]) -> dict[str, GateOutcome]:
    """{gate: a few fields} as the outcomes of gates that left no folder."""
    return {g: GateOutcome(result=r) for g, r in typed(results).items()}

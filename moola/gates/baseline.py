"""Gate 1: the EnhancedSimpleLSTM baseline, trained with the default recipe (no pretraining)."""

from __future__ import annotations

from moola.gates.classifier import classifier_gate
from moola.gates.context import Context
from moola.gates.result import GateResult


def gate_baseline(ctx: Context, folders: dict) -> GateResult:
    return classifier_gate(ctx, "baseline", ctx.cfg.model, baseline=folders.get("baseline"))

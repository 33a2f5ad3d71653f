"""Gate 5: the baseline recipe with per-sample augmentation of train batches (never validation)."""

from __future__ import annotations

from moola.gates.classifier import classifier_gate
from moola.gates.context import Context
from moola.gates.result import GateResult


def gate_augment(ctx: Context, folders: dict) -> GateResult:
    return classifier_gate(ctx, "augment", ctx.cfg.model, baseline=folders.get("baseline"), augment=True)

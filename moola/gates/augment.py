"""Gate 5: the baseline recipe with per-sample augmentation of train batches (never validation)."""

from __future__ import annotations

from .classifier import classifier_gate
from .context import Context
from .result import GateResult


def gate_augment(ctx: Context, folders: dict) -> GateResult:
    return classifier_gate(ctx, "augment", ctx.cfg.model, baseline=folders.get("baseline"), augment=True)

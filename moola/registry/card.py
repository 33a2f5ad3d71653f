"""A registered model's card: its provenance, recorded with it (``card.json``) and read by every later
decision and by nightly re-validation."""

from __future__ import annotations

from moola.gates.result import GateResult
from moola.registry.store import Pointer


def card_for(result: GateResult, production_before: Pointer | None) -> dict:
    """Provenance of a registered model: metrics, config, data hash, the gate result, code version."""
    plain = result.model_dump(mode="json")
    return {"gate": result.gate, "metrics": plain["metrics"], "pooled": plain["pooled"],
            "train_end": result.data.get("train_end"), "config": plain["config"],
            "data_manifest_sha256": result.data_manifest_sha256,
            "git_commit": result.environment.get("git_commit"),
            "parent": production_before.stored() if production_before else None, "result": plain}

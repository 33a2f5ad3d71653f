"""A registered model's card: its provenance, recorded with it (``card.json``) and read by every later
decision and by nightly re-validation."""

from __future__ import annotations

from moola.gates.result import GateResult


def card_for(result: GateResult, production_before: dict | None) -> dict:
    """Provenance of a registered model: metrics, config, data hash, the gate result, code version."""
    plain = result.model_dump(mode="json")
    return {"gate": result.gate, "metrics": plain["metrics"], "pooled": plain["pooled"],
            "train_end": result.data.get("train_end"), "config": plain["config"],
            "data_manifest_sha256": result.data_manifest_sha256,
            "git_commit": result.environment.get("git_commit"),
            "parent": production_before, "result": plain}

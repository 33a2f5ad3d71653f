"""A registered model's card: its provenance, recorded with it (``card.json``) and read by every later
decision and by nightly re-validation."""

from __future__ import annotations


def card_for(gate: str, result: dict, production_before: dict | None) -> dict:
    """Provenance of a registered model: metrics, config, data hash, the gate result, code version."""
    return {"gate": gate, "metrics": result.get("metrics"), "pooled": result.get("pooled"),
            "train_end": (result.get("data") or {}).get("train_end"), "config": result.get("config"),
            "data_manifest_sha256": result.get("data_manifest_sha256"),
            "git_commit": (result.get("environment") or {}).get("git_commit"),
            "parent": production_before, "result": result}

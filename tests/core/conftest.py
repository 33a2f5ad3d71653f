"""Fixtures of the core tests: a minimal sealed gate folder for the registry."""

from __future__ import annotations

import json

import pytest

from moola.core.seal import write_manifest


@pytest.fixture
def gate_dir(tmp_path):
    d = tmp_path / "gate"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"x" * 1000)
    (d / "result.json").write_text(json.dumps({"metrics": {"f1_weighted": 0.7}}))
    write_manifest(d)
    return d

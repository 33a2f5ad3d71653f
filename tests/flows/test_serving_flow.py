"""decide refuses a candidate that does not serve, and says so (issue 10)."""

from __future__ import annotations

import json
import shutil

from moola.modelfile import write_manifest
from tests.flows.conftest import jsonl


def test_decide_never_ships_a_folder_that_serves_differently(prefect_server, gate_dirs, sample_dir, tmp_path):
    from flows.decide import decide_flow
    folder = tmp_path / "baseline"
    shutil.copytree(gate_dirs["baseline"], folder)
    cfg = json.loads((folder / "model.json").read_text())
    cfg["normalizer"]["scale"] *= 3.0
    (folder / "model.json").write_text(json.dumps(cfg))
    write_manifest(folder)
    result = json.loads((folder / "result.json").read_text())
    art = tmp_path / "art"
    state = decide_flow({"validate": {"status": "passed"}, "baseline": result}, {"baseline": str(folder)},
                        artifacts=str(art), data=str(sample_dir / "train.parquet"), return_state=True)
    assert state.is_failed()
    decision = jsonl(art)[-1]["decision"]
    assert decision["action"] == "blocked" and decision["production_after"] is None
    assert any("baseline does not serve: served predictions differ" in r for r in decision["reasons"])
    assert not (art / "registry.json").exists() and not (art / "models").exists()


def test_decide_ships_a_folder_that_serves_and_says_so(prefect_server, gate_dirs, sample_dir, tmp_path):
    from flows.decide import decide_flow
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    art = tmp_path / "art"
    decide_flow({"validate": {"status": "passed"}, "baseline": result}, {"baseline": str(gate_dirs["baseline"])},
                artifacts=str(art), data=str(sample_dir / "train.parquet"))
    decision = jsonl(art)[-1]["decision"]
    assert decision["action"] == "ship" and decision["production_after"]["version"] == 1
    assert any("baseline serves: a fresh `moola predict` reproduces" in r for r in decision["reasons"])

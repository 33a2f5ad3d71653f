"""The gates flow end to end on a Prefect test server, with the local runner."""

from __future__ import annotations

import json
from pathlib import Path

from tests.flows.conftest import CONFIG, jsonl


def test_full_flow_reaches_a_decision_and_the_registry_agrees(prefect_server, sample_dir, tmp_path):
    from flows.gates import gates
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), unlabeled=str(sample_dir / "unlabeled.parquet"),
                  config=CONFIG, artifacts=str(art), return_state=True)
    lines = jsonl(art)
    gate_lines = [x for x in lines if x["kind"] == "gate_result"]
    decision = [x for x in lines if x["kind"] == "decision"][-1]["decision"]
    assert {x["gate"] for x in gate_lines} == {"validate", "baseline", "minirocket", "pretrain", "transfer", "augment"}
    assert decision["action"] in ("ship", "revert", "investigate", "blocked")
    # a reliability diagram per model in the run folder, linked from the UI
    run_dir = Path(gate_lines[0]["dir"]).parent
    pngs = sorted(p.name for p in run_dir.glob("reliability-*.png"))
    assert pngs == [f"reliability-{g}.png" for g in (
        "augment", "baseline", "minirocket", "pretrain", "transfer")]  # pretrain: its linear probe
    assert all((run_dir / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    with get_client(sync_client=True) as client:
        links = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["reliability-baseline"])))
        decision_md = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["decision"])))
    assert any((run_dir / "reliability-baseline.png").resolve().as_uri() in a.data for a in links)
    assert any(f"Decision: **{decision['action']}**" in a.data for a in decision_md)
    registry = json.loads((art / "registry.json").read_text()) if (art / "registry.json").exists() else None
    if decision["action"] == "ship":
        assert state.is_completed()
        assert registry["production"]["name"] == decision["candidate"] == decision["production_after"]["name"]
        assert (Path(registry["production"]["path"]) / "card.json").is_file()
    else:
        assert registry is None and decision["production_after"] is None
        assert state.is_failed() == (decision["action"] in ("blocked", "investigate"))
        if state.is_failed():  # the flow says why, in the decision's own words
            assert state.message == f"{decision['action']}: " + "; ".join(decision["reasons"])


def test_seed_smoke_is_blocked_and_never_shipped(prefect_server, sample_dir, tmp_path):
    from flows.gates import gates
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), unlabeled=str(sample_dir / "unlabeled.parquet"),
                  preset="seed-smoke", config=CONFIG, artifacts=str(art), return_state=True)
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]["decision"]
    assert state.is_failed() and decision["action"] == "blocked"
    assert not (art / "registry.json").exists() and not (art / "models").exists()


def test_leaky_data_is_blocked_at_gate_0(prefect_server, sample_frame, write_frame, tmp_path):
    from flows.gates import gates
    df = sample_frame.copy()
    df.at[df.index[-1], "features"] = df.at[df.index[0], "features"]  # a validation window copied from train
    art = tmp_path / "art"
    state = gates(data=str(write_frame(df)), artifacts=str(art), return_state=True)
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]["decision"]
    assert state.is_failed() and decision["action"] == "blocked"
    # the problem itself, in Gate 0's words (not Prefect's "Task run encountered an exception")
    assert decision["reasons"][0].startswith("Gate 0 failed: train.parquet: ")
    assert "has the same features as window_id" in decision["reasons"][0]
    assert not (art / "registry.json").exists()


def test_a_parameter_typo_fails_at_once_and_records_nothing(prefect_server, sample_dir, tmp_path, capsys):
    from flows.gates import gates, main
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), runner="runpd", artifacts=str(art), return_state=True)
    assert state.is_failed() and "runner: expected one of here, local, ssh, runpod, found 'runpd'" in state.message
    assert main(["--data", str(sample_dir / "train.parquet"), "--preset", "fast", "--artifacts", str(art)]) == 1
    assert "--preset: expected one of default, seed-smoke, found 'fast'" in capsys.readouterr().err
    assert not art.exists()  # no gate ran, nothing was written

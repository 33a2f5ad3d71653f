"""The gates flow end to end on a Prefect test server, with the local runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.flows.conftest import CONFIG, assert_expected_decision, jsonl


def test_full_flow_reaches_a_decision_and_the_registry_agrees(prefect_server, sample_dir, tmp_path):
    from moola_flows.gates import gates
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), unlabeled=str(sample_dir / "unlabeled.parquet"),
                  config=CONFIG, artifacts=str(art), return_state=True)
    lines = jsonl(art)
    gate_lines = [x for x in lines if x["kind"] == "gate_result"]
    decision = [x for x in lines if x["kind"] == "decision"][-1]["decision"]
    assert {x["gate"] for x in gate_lines} == {"validate", "baseline", "minirocket", "pretrain", "transfer", "augment"}
    assert_expected_decision(decision)  # gates 3-4 ran too; transfer does not beat augment here
    # a reliability diagram per model in the run folder, linked from the UI
    run_dir = Path(gate_lines[0]["dir"]).parent
    pngs = sorted(p.name for p in run_dir.glob("reliability-*.png"))
    assert pngs == [f"reliability-{g}.png" for g in (
        "augment", "baseline", "minirocket", "pretrain", "transfer")]  # pretrain: its linear probe
    assert all((run_dir / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # the UI tells the story (issue 15): the run's state is the decision's name, the decision
    # artifact sits on the gates run itself, every artifact is described, none points at a file,
    # and each gate's reliability diagram is an embedded PNG that decodes
    from moola_flows.report import STATE_NAMES

    from tests.flows.test_ui import PNG, artifacts_of, embedded_pngs
    assert state.name == STATE_NAMES[decision["action"]]
    arts = artifacts_of(state.state_details.flow_run_id)
    assert {"decision", "decision-history"} <= {a.key for a in arts}
    assert f"Decision: **{decision['action']}**" in next(a for a in arts if a.key == "decision").data
    assert all(a.description for a in arts), [a.key for a in arts if not a.description]
    assert not any("file://" in str(a.data) for a in arts)
    gate_arts = {a.key: a for a in arts if a.key.startswith("gate-")}
    assert sorted(gate_arts) == ["gate-0-validate", "gate-1-baseline", "gate-2-minirocket", "gate-3-pretrain",
                                 "gate-4-transfer", "gate-5-augment"]
    for key, a in gate_arts.items():
        pngs = embedded_pngs(a.data)
        assert (len(pngs) == 1 and pngs[0].startswith(PNG)) == (key != "gate-0-validate"), key
    # gate artifacts lead with the pooled figures the decision uses, the last fold beside them
    base = gate_arts["gate-1-baseline"].data
    assert "| metric | pooled (60 windows, every fold) | last fold (20 windows) | majority baseline (last fold) |" in base
    g0 = gate_arts["gate-0-validate"].data
    assert "| check | outcome |" in g0 and "train / validation | 78 / 20" in g0
    if decision["action"] == "investigate":
        assert "control beats baseline: investigate" in gate_arts["gate-2-minirocket"].data
    # the decision's paired intervals as a forest plot (issue 24), in the artifact and on disk
    # beside the gate folders with the same report as decision.md (readable without the UI)
    decision_art = next(a for a in arts if a.key == "decision").data
    assert "control vs augment" in decision["evidence"] and len(embedded_pngs(decision_art)) == 1
    assert (run_dir / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (run_dir / "decision.md").read_text()
    assert report.startswith(f"# Decision: **{decision['action']}**") and "![forest plot](forest.png)" in report
    assert decision["reasons"][0] in report and "control vs augment" in report
    registry = json.loads((art / "registry.json").read_text())
    assert state.is_completed() and state.message == "ship: " + "; ".join(decision["reasons"])
    assert registry["production"]["name"] == decision["candidate"] == decision["production_after"]["name"]
    from moola.registry.store import Registry
    assert (Registry(art).folder(Registry(art).production()) / "card.json").is_file()


def test_seed_smoke_is_blocked_and_never_shipped(prefect_server, sample_dir, tmp_path):
    from moola_flows.gates import gates
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), unlabeled=str(sample_dir / "unlabeled.parquet"),
                  preset="seed-smoke", config=CONFIG, artifacts=str(art), return_state=True)
    decision = [x for x in jsonl(art) if x["kind"] == "decision"][-1]["decision"]
    assert state.is_failed() and decision["action"] == "blocked"
    assert not (art / "registry.json").exists() and not (art / "models").exists()


def test_leaky_data_is_blocked_at_gate_0(prefect_server, sample_frame, write_frame, tmp_path):
    from moola_flows.gates import gates
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
    from moola_flows.gates import gates, main
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), runner="runpd", artifacts=str(art), return_state=True)
    # the parameter schema refuses it before the flow starts (the UI offers the choices)
    assert state.is_failed() and "runner" in state.message and "'here', 'local', 'ssh' or 'runpod'" in state.message
    with pytest.raises(SystemExit) as out:  # the command line offers the same choices (argparse: exit 2)
        main(["--data", str(sample_dir / "train.parquet"), "--preset", "fast", "--artifacts", str(art)])
    assert out.value.code == 2
    assert "--preset: invalid choice: 'fast' (choose from 'default', 'seed-smoke')" in capsys.readouterr().err
    # the same for values pydantic refuses: one line naming the field, never its traceback
    assert main(["--data", str(sample_dir / "train.parquet"), "--val-size", "nan", "--artifacts", str(art)]) == 2
    err = capsys.readouterr().err
    assert "val_size" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    assert main(["--data", str(sample_dir / "train.parquet"), "--seed", str(2**64), "--artifacts", str(art)]) == 2
    assert "seed" in capsys.readouterr().err
    state = gates(data=str(sample_dir / "train.parquet"), policy={"f1_margn": 0.1}, artifacts=str(art),
                  return_state=True)
    assert state.is_failed() and "policy.f1_margn: Extra inputs are not permitted" in state.message
    assert not art.exists()  # no gate ran, nothing was written


def test_without_unlabelled_data_gates_3_4_are_skipped_and_a_decision_is_reached(prefect_server, sample_dir,
                                                                                 tmp_path):
    """Omitting `unlabeled` crashed the flow at Gate 3 after Gates 1-2 had trained (issue 11)."""
    from moola_flows.gates import gates
    from moola_flows.report import STATE_NAMES
    art = tmp_path / "art"
    state = gates(data=str(sample_dir / "train.parquet"), config=CONFIG, artifacts=str(art), return_state=True)
    lines = jsonl(art)
    gates_seen = {x["gate"]: x["result"]["status"] for x in lines if x["kind"] == "gate_result"}
    assert gates_seen["pretrain"] == gates_seen["transfer"] == "skipped"
    assert {g for g, s in gates_seen.items() if s != "skipped"} == {"validate", "baseline", "minirocket", "augment"}
    decision = [x for x in lines if x["kind"] == "decision"][-1]["decision"]
    assert state.name == STATE_NAMES[decision["action"]]
    assert_expected_decision(decision)


def test_a_run_that_decides_nothing_exits_1_and_never_prints_an_earlier_decision(prefect_server, sample_dir,
                                                                                  tmp_path, capsys, monkeypatch):
    """`python -m flows.gates` (what `make demo` runs) printed the registry's last decision and exited 0
    when this run decided nothing (here the decision step itself fails after the gates)."""
    import moola_flows.decide
    from moola_flows.gates import main

    from moola.registry.store import Registry
    art = tmp_path / "art"
    Registry(art).append({"kind": "decision", "decision": {"action": "ship", "candidate": "augment",
                                                           "reasons": ["an earlier run"]}})

    def broken(*a, **kw):
        raise RuntimeError("decide broke")
    monkeypatch.setattr(moola_flows.decide, "decide_and_ship", broken)
    assert main(["--data", str(sample_dir / "train.parquet"), "--config", CONFIG, "--artifacts", str(art)]) == 1
    out, err = capsys.readouterr()
    assert "no decision reached" in err and "decide broke" in err
    assert "an earlier run" not in out + err and "decision: SHIP" not in out

"""The nightly re-validation flow: production shipped, then nights of new windows from the same
market end Healthy and fill its ledger; a night whose labels are inverted ends Degraded,
production stays where it is, and a `gates/full` run is started on the current data. Bad data
changes nothing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import frame_from
from tests.fakes.results import ran
from tests.flows.conftest import jsonl


def ship(art, gate_dir, times: int):
    from moola.gates.result import read_result
    from moola.registry.card import card_for
    from moola.registry.store import Registry
    reg = Registry(art)
    result = read_result(gate_dir)
    for _ in range(times):
        before = reg.production()
        reg.set_production(reg.register("baseline", gate_dir, card_for(result, before)), "ship", "test")
    return reg


def later_days(seed: int, n: int, first_day: str, inverted: bool = False) -> pd.DataFrame:
    """``n`` labelled windows of the sample's market on the trading days from ``first_day``."""
    from moola.data.sample import make_sample
    lab, _ = make_sample(seed=seed, n_labeled=n, n_unlabeled=0, first_day=first_day)
    df = frame_from(lab)
    if inverted:
        a, b = sorted(df["label"].unique())
        df["label"] = df["label"].map({a: b, b: a})
    return df


@pytest.fixture
def gates_deployment(prefect_server):
    """A `gates/full` deployment on the test server (no worker: the run it gets stays Scheduled)."""
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as c:
        flow_id = c.create_flow_from_name("gates")
        dep = c.create_deployment(flow_id=flow_id, name="full", entrypoint="flows/gates.py:gates")
    yield dep
    with get_client(sync_client=True) as c:
        c.delete_deployment(dep)


def runs_of(deployment_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    with get_client(sync_client=True) as c:
        return c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_healthy_nights_then_inverted_labels_end_degraded_and_start_the_gates(
        prefect_server, gates_deployment, gate_dirs, sample_frame, write_frame, tmp_path):
    from moola_flows.revalidate import revalidate
    art = tmp_path / "art"
    reg = ship(art, gate_dirs["baseline"], times=1)
    prod = reg.production()

    # the data it shipped on: every window is before its training end or in the evidence that shipped it
    out = revalidate(data=str(write_frame(sample_frame, "night0.parquet")), artifacts=str(art))
    assert out["action"] == "healthy" and out["summary"]["windows"] == 0 and reg.ledger(prod) == []
    assert "no new labelled window tonight" in out["reasons"]

    # three nights, each adding 10 trading days (20 windows) of the same market
    frame, counted = sample_frame, []
    for night, first in enumerate(("2025-06-02", "2025-06-16", "2025-06-30"), 1):
        frame = pd.concat([frame, later_days(100 + night, 20, first)], ignore_index=True)
        state = revalidate(data=str(write_frame(frame, f"night{night}.parquet")), artifacts=str(art),
                           return_state=True)
        out = state.result()
        assert state.is_completed() and state.name == "Healthy" and out["action"] == "healthy", out["reasons"]
        counted.append(out["summary"]["windows"])
    assert counted == [20, 40, 60]  # each window counted once, on the night it arrived
    ledger = reg.ledger(prod)
    assert len({r["window_id"] for r in ledger}) == 60 and all(r["start"] >= pd.Timestamp("2025-06-02", tz="UTC").value
                                                               for r in ledger)
    assert reg.production() == prod

    # the labels drift (inverted from here on): Degraded, production stays, a gates run is started
    frame = pd.concat([frame, later_days(200, 60, "2025-07-14", inverted=True)], ignore_index=True)
    drifted = str(write_frame(frame, "drifted.parquet"))
    state = revalidate(data=drifted, artifacts=str(art), return_state=True)
    out = state.result()
    assert state.is_completed() and state.name == "Degraded" and out["action"] == "degraded", out["reasons"]
    assert "worse than the class shares (no skill)" in out["reasons"][0]
    assert reg.production() == prod and reg.read()["history"][-1]["action"] == "ship"
    runs = runs_of(gates_deployment)
    assert len(runs) == 1 and runs[0].parameters["data"] == drifted and runs[0].parameters["artifacts"] == str(art)
    line = jsonl(art)[-1]["revalidation"]
    assert line["action"] == "degraded" and line["new_windows"] == 60 and line["production"] == prod.stored()

    # invalid data: the flow fails naming the problem, registry, JSONL and ledger untouched
    before, lines, rows = (art / "registry.json").read_bytes(), len(jsonl(art)), len(reg.ledger(prod))
    bad = frame.copy()
    bad.at[bad.index[3], "label"] = None
    state = revalidate(data=str(write_frame(bad, "bad.parquet")), artifacts=str(art), return_state=True)
    assert state.is_failed() and "column 'label'" in state.message
    assert (art / "registry.json").read_bytes() == before and len(jsonl(art)) == lines
    assert len(reg.ledger(prod)) == rows


def test_without_production_there_is_nothing_to_do(prefect_server, sample_dir, tmp_path):
    from moola_flows.revalidate import revalidate
    out = revalidate(data=str(sample_dir / "train.parquet"), artifacts=str(tmp_path / "art"))
    assert out == {"action": "none", "reasons": ["no production model"]}
    assert not (tmp_path / "art").exists()
def test_decide_returns_a_degraded_production_to_the_last_good_version(prefect_server, gate_dirs, tmp_path):
    """Production is a version marked degraded (someone rolled back onto it by hand); a run whose
    candidate does not beat it ends in `revert`, and production returns to the last good one."""
    from moola_flows.decide import decide_flow
    art = tmp_path / "art"
    reg = ship(art, gate_dirs["baseline"], times=2)
    reg.revert_to_last_good("nightly: v2 below the floor")  # v2 marked, production v1
    reg.rollback(to="v2")                                      # a person puts v2 back
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    out = decide_flow({"baseline": ran(gate_dirs["baseline"], result)}, str(art))
    assert out["action"] == "revert"  # the same model does not beat itself
    assert out["reasons"][-1] == "production was degraded: returned to baseline v1"
    state = reg.read()
    assert state["production"]["version"] == 1 and state["history"][-1]["action"] == "revert"
    decision = jsonl(art)[-1]["decision"]
    assert decision["production_before"]["version"] == 2 and decision["production_after"]["version"] == 1


def test_two_decides_at_once_ship_once_and_record_what_really_happened(prefect_server, gate_dirs, tmp_path,
                                                                       monkeypatch):
    """Both see no production and want to ship the same healthy baseline. One ships; the other
    finds production changed, decides again against it and reverts (the same model does not beat
    itself). Each JSONL decision's before/after matches the registry's history. A barrier holds
    each decide after its first read of production until the other has read it too, so both
    always decide against "no production" and the compare-and-swap retry must happen."""
    import threading

    from moola_flows.decide import decide_flow

    from moola.registry.store import Registry
    art = tmp_path / "art"
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    outs, errors = [], []
    both_read, reads, real = threading.Barrier(2, timeout=60), [], Registry.production_card

    def production_card(self):
        got = real(self)
        reads.append(got[0])
        if len(reads) <= 2:  # each decide's first read
            both_read.wait()
        return got
    monkeypatch.setattr(Registry, "production_card", production_card)

    def one():
        try:
            outs.append(decide_flow({"baseline": ran(gate_dirs["baseline"], result)}, str(art)))
        except Exception as exc:  # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(o["action"] for o in outs) == ["revert", "ship"]
    # the retry path: two first reads of no production, then the loser read the winner's version
    assert reads[:2] == [None, None] and len(reads) == 3 and reads[2].version == 1
    state = json.loads((art / "registry.json").read_text())
    assert [h["action"] for h in state["history"]] == ["ship"] and state["production"]["version"] == 1
    decisions = [x["decision"] for x in jsonl(art) if x["kind"] == "decision"]
    ship = next(x for x in decisions if x["action"] == "ship")
    revert = next(x for x in decisions if x["action"] == "revert")
    assert ship["production_before"] is None and ship["production_after"]["version"] == 1
    assert revert["production_before"]["version"] == 1 and revert["production_after"]["version"] == 1
    assert len(list((art / "models" / "baseline").iterdir())) == 1  # one version, no stray copies



"""The nightly re-validation flow: healthy production stays; degraded production returns to the
last good version; with none left it is marked and the flow fails; bad data changes nothing."""

from __future__ import annotations

import json

from tests.flows.conftest import jsonl


def ship(art, gate_dir, times: int):
    from flows.decide import card_for
    from moola.registry import Registry
    reg = Registry(art)
    result = json.loads((gate_dir / "result.json").read_text())
    for _ in range(times):
        before = reg.read()["production"]
        reg.set_production(reg.register("baseline", gate_dir, card_for("baseline", result, before)), "ship", "test")
    return reg


def flipped(sample_frame):
    """Same windows, every label swapped: what a model sees when the labelling drifts."""
    df = sample_frame.copy()
    a, b = sorted(df["label"].unique())
    df["label"] = df["label"].map({a: b, b: a})
    return df


def test_revalidation_keeps_reverts_and_finally_fails(prefect_server, gate_dirs, sample_dir, sample_frame,
                                                     write_frame, tmp_path):
    from flows.revalidate import revalidate
    art = tmp_path / "art"
    reg = ship(art, gate_dirs["baseline"], times=2)
    recorded = json.loads((gate_dirs["baseline"] / "result.json").read_text())["metrics"]["f1_weighted"]

    # the data it shipped on: healthy, production stays on v2
    state = revalidate(data=str(sample_dir / "train.parquet"), artifacts=str(art), return_state=True)
    out = state.result()
    assert out["action"] == "keep" and out["production"]["version"] == 2
    assert state.is_completed() and state.name == "Healthy"  # the run list reads as the outcome (issue 15)
    line = jsonl(art)[-1]["revalidation"]
    assert line["metrics"]["f1_weighted"] == recorded  # same model, same validation fold, same F1

    # labels drifted: v2 falls below the floor -> back to v1, v2 marked degraded, the reason recorded
    drifted = str(write_frame(flipped(sample_frame), "drifted.parquet"))
    state = revalidate(data=drifted, artifacts=str(art), return_state=True)
    out = state.result()
    assert out["action"] == "revert" and out["production"]["version"] == 1
    assert state.is_completed() and state.name == "Degraded"
    state = reg.read()
    assert state["production"]["version"] == 1 and [d["version"] for d in state["degraded"]] == [2]
    assert state["history"][-1]["action"] == "revert" and "nightly re-validation" in state["history"][-1]["reason"]
    line = jsonl(art)[-1]["revalidation"]
    assert line["production_before"]["version"] == 2 and line["production_after"]["version"] == 1
    assert line["metrics"]["f1_weighted"] < recorded - 0.05

    # v1 fails too and nothing earlier is good: production stays, marked, and the flow fails loudly
    state = revalidate(data=drifted, artifacts=str(art), return_state=True)
    assert state.is_failed() and state.name == "Degraded" and "no earlier good version" in state.message
    assert reg.read()["production"]["version"] == 1 and len(reg.read()["degraded"]) == 2

    # invalid data: the flow fails naming the problem, registry and JSONL untouched
    before, lines = (art / "registry.json").read_bytes(), len(jsonl(art))
    bad = sample_frame.copy()
    bad.at[bad.index[3], "label"] = None
    state = revalidate(data=str(write_frame(bad, "bad.parquet")), artifacts=str(art), return_state=True)
    assert state.is_failed() and "column 'label'" in state.message
    assert (art / "registry.json").read_bytes() == before and len(jsonl(art)) == lines


def test_without_production_there_is_nothing_to_do(prefect_server, sample_dir, tmp_path):
    from flows.revalidate import revalidate
    out = revalidate(data=str(sample_dir / "train.parquet"), artifacts=str(tmp_path / "art"))
    assert out == {"action": "none", "reasons": ["no production model"]}
    assert not (tmp_path / "art").exists()


def test_decide_returns_a_degraded_production_to_the_last_good_version(prefect_server, gate_dirs, tmp_path):
    """Production is a version marked degraded (someone rolled back onto it by hand); a run whose
    candidate does not beat it ends in `revert`, and production returns to the last good one."""
    from flows.decide import decide_flow
    art = tmp_path / "art"
    reg = ship(art, gate_dirs["baseline"], times=2)
    reg.revert_to_last_good("nightly: v2 below the floor")  # v2 marked, production v1
    reg.rollback(to="v2")                                      # a person puts v2 back
    result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    out = decide_flow({"baseline": result}, {"baseline": str(gate_dirs["baseline"])}, str(art))
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

    from flows.decide import decide_flow
    from moola.registry import Registry
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
            outs.append(decide_flow({"baseline": result}, {"baseline": str(gate_dirs["baseline"])}, str(art)))
        except Exception as exc:  # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(o["action"] for o in outs) == ["revert", "ship"]
    # the retry path: two first reads of no production, then the loser read the winner's version
    assert reads[:2] == [None, None] and len(reads) == 3 and reads[2]["version"] == 1
    state = json.loads((art / "registry.json").read_text())
    assert [h["action"] for h in state["history"]] == ["ship"] and state["production"]["version"] == 1
    decisions = [x["decision"] for x in jsonl(art) if x["kind"] == "decision"]
    ship = next(x for x in decisions if x["action"] == "ship")
    revert = next(x for x in decisions if x["action"] == "revert")
    assert ship["production_before"] is None and ship["production_after"]["version"] == 1
    assert revert["production_before"]["version"] == 1 and revert["production_after"]["version"] == 1
    assert len(list((art / "models" / "baseline").iterdir())) == 1  # one version, no stray copies


def test_a_ship_landing_while_scoring_is_not_degraded(prefect_server, gate_dirs, sample_frame, write_frame,
                                                      tmp_path, monkeypatch):
    """Issue 10: re-validation read v2, scored it, then degraded whatever was production by then
    (a v3 shipped meanwhile) and brought v2 back. Now it acts only on the version it scored."""
    import flows.revalidate as rv
    art = tmp_path / "art"
    reg = ship(art, gate_dirs["baseline"], times=2)
    scored = []
    real = rv.score_production

    def score_while_a_ship_lands(path, *args):
        scored.append(path)
        if len(scored) == 1:
            ship(art, gate_dirs["baseline"], times=1)  # another decide ships v3 meanwhile
        return real.fn(path, *args)

    monkeypatch.setattr(rv, "score_production", score_while_a_ship_lands)
    drifted = str(write_frame(flipped(sample_frame), "drifted.parquet"))
    out = rv.revalidate(data=drifted, artifacts=str(art), return_state=True).result()
    state = reg.read()
    # v2 was scored and found degraded; v3 was then scored itself before anything happened to it
    assert [p.rsplit("/", 1)[-1] for p in scored] == ["v2", "v3"]
    assert sorted(d["version"] for d in state["degraded"]) == [2, 3]
    assert out["action"] == "revert" and state["production"]["version"] == 1

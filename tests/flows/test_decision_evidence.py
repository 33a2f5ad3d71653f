"""Issue 11, end to end: production shipped on old data, new data arrives that is harder; the
candidate is compared with production on the new windows (the same window ids, only those after
production's training data), and the decision differs from what the recorded numbers say."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from moola.data.config import DataConfig
from moola.gates.config import load_gate_config
from moola.gates.run import run_gate
from tests.fakes.results import GATE0, ran
from tests.flows.conftest import jsonl

SHIFT = pd.offsets.BDay(15)  # the new data starts 15 trading days later: it overlaps the old
NOISE = 0.15                 # and is harder: 15% more of its labels flipped


def new_data(old: pd.DataFrame) -> pd.DataFrame:
    """The same market, later, after the meaning of the labels changed (concept drift) and with
    noisier labels: production's knowledge is now wrong."""
    rng = np.random.default_rng(5)
    new = old.copy()
    new["timestamp"] = old["timestamp"] + SHIFT
    new["window_id"] = ["n" + w for w in old["window_id"]]
    new["base_window"] = ["n" + str(b) for b in old["base_window"]]
    for c in ("expansion_start", "expansion_end"):
        if c in new:
            new = new.drop(columns=c)
    flip = {"consolidation": "retracement", "retracement": "consolidation"}
    labels = old["label"].map(flip)
    noisy = rng.random(len(old)) < NOISE
    labels[noisy] = old["label"][noisy]
    new["label"] = labels
    return new


def test_production_is_rescored_on_the_candidates_new_windows(prefect_server, gate_dirs, sample_dir, tmp_path):
    from moola_flows.decide import decide_flow
    art = tmp_path / "art"
    old_path = sample_dir / "train.parquet"
    old_result = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    decide_flow({"validate": GATE0, "baseline": ran(gate_dirs["baseline"], old_result)}, artifacts=str(art),
                data=str(old_path))
    assert jsonl(art)[-1]["decision"]["action"] == "ship"  # the first production, trained on the old data

    old = pd.read_parquet(old_path)
    new_path = tmp_path / "new.parquet"
    new = new_data(old)
    new.to_parquet(new_path, index=False)
    cfg = load_gate_config(seed=3)
    cand = run_gate("baseline", new_path, tmp_path / "cand", cfg, DataConfig(folds=3), "cpu")
    res = json.loads((tmp_path / "cand" / "result.json").read_text())
    state = decide_flow({"validate": GATE0, "baseline": ran(tmp_path / "cand", res)},
                        artifacts=str(art), data=str(new_path), return_state=True)
    decision = jsonl(art)[-1]["decision"]
    e = decision["evidence"]["baseline vs production"]

    # exactly the candidate's pooled windows that start at or after production's training end
    pred = pd.read_parquet(tmp_path / "cand" / "predictions.parquet")
    assert len(pred) == 60 == cand.pooled.n
    train_end = pd.Timestamp(old_result["data"]["train_end"])
    starts = new.set_index("window_id")["timestamp"]
    after = pred[pred["window_id"].map(starts) >= train_end]
    assert 0 < len(after) < len(pred)  # some pooled windows predate production's training end: left out
    assert e["n"] == len(after)
    # a day's two windows are one group: resampled and swapped together (base_window)
    assert e["groups"] == after["window_id"].map(new.set_index("window_id")["base_window"]).nunique() < e["n"]
    # both F1s of the comparison are recomputed here from those same window ids
    y = after["label"].tolist()
    assert e["f1_weighted"]["b"] == f1_score(y, after["predicted"], average="weighted")
    from moola.serve.inference import predict_windows
    rows = new.set_index("window_id").loc[after["window_id"]]
    X = np.stack([np.array(list(f), dtype=float) for f in rows["features"]])
    proba, classes = predict_windows(gate_dirs["baseline"], X, "new", "cpu")
    prod_pred = [classes[i] for i in proba.argmax(1)]
    assert e["f1_weighted"]["a"] == f1_score(y, prod_pred, average="weighted")

    # the recorded numbers (production's F1 on the old windows, higher than anything on the harder
    # new data) would have kept production; on the same windows it is far behind
    recorded = old_result["metrics"]["f1_weighted"]
    assert cand.pooled.f1_weighted < recorded
    assert e["f1_weighted"]["a"] < e["f1_weighted"]["b"] and e["f1_weighted"]["ci_low"] > 0
    assert decision["action"] == "ship" and decision["candidate"] == "baseline", decision["reasons"]
    assert decision["production_after"]["version"] == 2 and state.name == "Shipped"
    assert any("production re-scored on" in w and f"{len(after)} of the 60" in w for w in decision["notes"])
    shown = next(r for r in decision["rules"] if r["name"].startswith("production's recorded F1"))
    assert shown["detail"] == f"{recorded:.3f}" and shown["passed"]

    # the same windows again against the same production (v2): a decision compares on them once;
    # the next finds them used (each reuse would be another 2.5% chance of a false ship)
    for _ in range(2):
        decide_flow({"validate": GATE0, "baseline": ran(tmp_path / "cand", res)},
                    artifacts=str(art), data=str(new_path))
    first, second = [x["decision"] for x in jsonl(art) if x["kind"] == "decision"][-2:]
    assert first["production_before"]["version"] == 2 == second["production_before"]["version"]
    assert len(first["production_windows"]) > 0 and first["action"] == "revert"  # v2 does not beat itself
    assert second["action"] == "revert" and second["production_windows"] == []
    assert "already used by an earlier decision against it" in second["reasons"][0], second["reasons"]

"""Production re-scored for the decision: exactly the candidates' window ids, less those that
start before production's training data ends."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from moola.decide.evidence import rescore_production, train_end_ns
from moola.gates.predictions import gate_scored
from moola.gates.result import read_result


@pytest.fixture(scope="module")
def on(gate_dirs):
    return gate_scored(gate_dirs["baseline"], read_result(gate_dirs["baseline"]))


def card_with_end(end) -> dict:
    return {"data": {"train_end": None if end is None else pd.Timestamp(end).isoformat(),
                     "train_end_basis": "timestamps"}}


def test_scored_on_exactly_the_candidates_windows_after_the_training_end(gate_dirs, sample_dir, on):
    data = pd.read_parquet(sample_dir / "train.parquet").set_index("window_id")
    starts = data.loc[list(on.ids), "timestamp"].sort_values()
    cut = starts.iloc[8]  # the 9th earliest validation window starts here
    scored, what, notes = rescore_production(gate_dirs["baseline"], card_with_end(cut), sample_dir / "train.parquet", on)
    expected = [w for w in on.ids if data.loc[w, "timestamp"] >= cut]
    assert list(scored.ids) == expected and len(expected) == len(on.ids) - 8
    assert (scored.y == on.subset(scored.ids).y).all()
    assert f"on {len(expected)} of the {len(on.ids)} pooled validation windows (8 start before" in what
    assert notes == []
    # production's own probabilities: the baseline scoring itself reproduces its predictions
    assert abs(scored.proba - on.subset(scored.ids).proba).max() < 1e-6


def test_no_window_after_the_training_end_means_no_comparison(gate_dirs, sample_dir, on):
    scored, what, _ = rescore_production(gate_dirs["baseline"], card_with_end("2099-01-01T00:00:00Z"),
                                         sample_dir / "train.parquet", on)
    assert scored is None and f"none of the {len(on.ids)} validation windows starts after" in what


def test_an_unknown_training_end_is_said_out_loud(gate_dirs, sample_dir, on):
    assert train_end_ns({}) == (None, "not recorded")
    scored, _, notes = rescore_production(gate_dirs["baseline"], {}, sample_dir / "train.parquet", on)
    assert len(scored.ids) == len(on.ids)
    assert "not comparable (not recorded)" in notes[0] and "may have trained on" in notes[0]


def test_a_gate_records_where_its_training_data_ends(gate_dirs, sample_dir):
    res = json.loads((gate_dirs["baseline"] / "result.json").read_text())
    end, basis = train_end_ns(res)
    assert basis == "timestamps"
    pred = pd.read_parquet(gate_dirs["baseline"] / "predictions.parquet")
    data = pd.read_parquet(sample_dir / "train.parquet").set_index("window_id")
    val_starts = data.loc[pred["window_id"], "timestamp"]
    assert (val_starts >= pd.Timestamp(end, unit="ns", tz="UTC")).all()  # validation never before it

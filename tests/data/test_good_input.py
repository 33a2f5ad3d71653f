"""Good variants pass, and the manifest records the split the seed used (78/20)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from moola.cli.main import main
from moola.data.sample import write_windows


def validate_ok(capsys, path, tmp_path, *extra):
    out = tmp_path / "gate0"
    code = main(["validate", str(path), "--out", str(out), *map(str, extra)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return json.loads((out / "manifest.json").read_text())


def test_sample_data_validates_with_the_seed_split(capsys, sample_dir, tmp_path):
    m = validate_ok(capsys, sample_dir / "train.parquet", tmp_path,
                    "--unlabeled", sample_dir / "unlabeled.parquet")
    assert m["split"] == {"train": 78, "val": 20, "purged": 0}
    assert m["class_counts"] == {"consolidation": 56, "retracement": 42}
    fold = m["folds"][-1]
    assert len(fold["train_ids"]) == 78 and len(fold["val_ids"]) == 20
    assert fold["time_ranges"]["train"][1] <= fold["time_ranges"]["val"][0]
    assert m["files"]["labeled"]["rows"] == 98 and len(m["files"]["labeled"]["sha256"]) == 64
    assert m["unlabeled"]["kept"] == 300 and m["unlabeled"]["excluded"] == []
    assert all(c["passed"] for c in m["checks"]) and m["moola_version"]


def test_shuffled_rows_give_the_same_split(capsys, sample_frame, write_frame, tmp_path):
    a = validate_ok(capsys, write_frame(sample_frame, "a.parquet"), tmp_path / "a")
    shuffled = sample_frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = validate_ok(capsys, write_frame(shuffled, "b.parquet"), tmp_path / "b")
    assert set(a["folds"][-1]["val_ids"]) == set(b["folds"][-1]["val_ids"])
    assert list(sample_frame["window_id"].iloc[-20:]) == sorted(b["folds"][-1]["val_ids"])


def test_other_time_zones_and_naive_and_strings_agree(capsys, sample_frame, write_frame, tmp_path):
    base = validate_ok(capsys, write_frame(sample_frame, "utc.parquet"), tmp_path / "u")
    variants = {
        "tokyo": sample_frame["timestamp"].dt.tz_convert("Asia/Tokyo"),
        "naive": sample_frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None),
        "iso": sample_frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name, ts in variants.items():
        df = sample_frame.copy()
        df["timestamp"] = ts
        m = validate_ok(capsys, write_frame(df, f"{name}.parquet"), tmp_path / name)
        assert m["folds"][-1]["val_ids"] == base["folds"][-1]["val_ids"], name
        assert m["folds"][-1]["time_ranges"] == base["folds"][-1]["time_ranges"], name


def test_original_layout_needs_assume_row_order(capsys, sample_frame, write_frame, tmp_path):
    path = write_frame(sample_frame.drop(columns=["timestamp"]))
    assert main(["validate", str(path)]) == 2
    capsys.readouterr()
    m = validate_ok(capsys, path, tmp_path, "--assume-row-order")
    assert m["assumed_row_order"] is True
    assert m["folds"][-1]["val_ids"] == list(sample_frame["window_id"].iloc[78:])


def test_generic_channels_short_series_three_classes(capsys, tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    X = rng.normal(size=(n, 9, 1))
    starts = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    path = write_windows(tmp_path / "g.parquet", [f"w{i}" for i in range(n)], starts, X, labels)
    m = validate_ok(capsys, path, tmp_path, "--val-size", "12")
    assert m["shape"] == {"T": 9, "C": 1} and m["split"]["val"] == 12


def test_overlapping_windows_are_purged_and_reported(capsys, tmp_path):
    rng = np.random.default_rng(1)
    n = 40
    X = rng.normal(size=(n, 30, 1))
    # 30-bar windows every 10 minutes overlap: 2 train windows reach into validation.
    starts = pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC")
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    path = write_windows(tmp_path / "o.parquet", [f"w{i}" for i in range(n)], starts, X, labels)
    m = validate_ok(capsys, path, tmp_path, "--val-size", "10")
    fold = m["folds"][-1]
    assert [p["window_id"] for p in fold["purged"]] == ["w28", "w29"]
    assert "after validation starts" in fold["purged"][0]["reason"]
    assert m["split"] == {"train": 28, "val": 10, "purged": 2}


def test_folds_expand_and_last_is_default(capsys, sample_dir, tmp_path):
    m = validate_ok(capsys, sample_dir / "train.parquet", tmp_path, "--folds", "3")
    sizes = [(len(f["train_ids"]), len(f["val_ids"])) for f in m["folds"]]
    assert sizes == [(38, 20), (58, 20), (78, 20)]

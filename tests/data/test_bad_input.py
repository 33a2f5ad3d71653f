"""Data-contract tests: each a distinct way data goes wrong -> exit 2 and a line naming it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from moola.cli.main import main


def run_validate(capsys, path, *extra):
    code = main(["validate", str(path), *map(str, extra)])
    out = capsys.readouterr()
    return code, out.out, out.err


def set_feature(df, row, t, c, value):
    df = df.copy()
    f = [list(map(list, df.at[i, "features"])) for i in df.index]
    f[row][t][c] = value
    df["features"] = f
    return df


def _mutations():
    """(name, mutate(df) -> df, expected substring)."""
    def drop(col):
        return lambda df: df.drop(columns=[col])

    def setcol(col, values):
        def m(df):
            df = df.copy()
            df[col] = values(df)
            return df
        return m

    def one_label(df):
        df = df.copy()
        df["label"] = "consolidation"
        return df

    def class_only_in_val(df):
        df = df.copy()
        df.loc[df.index[-1], "label"] = "expansion"
        return df

    def class_once_in_train(df):
        df = df.copy()
        df.loc[df.index[0], "label"] = "expansion"
        df.loc[df.index[-1], "label"] = "expansion"
        return df

    def ragged_t(df):
        df = df.copy()
        f = list(df["features"])
        f[5] = f[5][:-3]
        df["features"] = f
        return df

    def ragged_c(df):
        df = df.copy()
        f = [list(map(list, x)) for x in df["features"]]
        f[7][10] = f[7][10][:3]
        df["features"] = f
        return df

    def short_t(df):
        df = df.copy()
        df["features"] = [list(x)[:8] for x in df["features"]]
        return df

    def null_feature(df):
        df = df.copy()
        f = list(df["features"])
        f[3] = None
        df["features"] = f
        return df

    def high_below_close(df):
        row = 4
        close = df.at[df.index[row], "features"][20][3]
        return set_feature(df, row, 20, 1, close - 10.0)

    def low_above_open(df):
        row = 6
        o = df.at[df.index[row], "features"][40][0]
        return set_feature(df, row, 40, 2, o + 10.0)

    def cross_split_dup(df):
        df = df.copy()
        df.at[df.index[-1], "features"] = df.at[df.index[0], "features"]
        return df

    def dup_ids(df):
        df = df.copy()
        df.loc[df.index[10], "window_id"] = df.loc[df.index[11], "window_id"]
        return df

    def null_label(df):
        df = df.copy()
        df["label"] = df["label"].astype(object)
        df.loc[df.index[2], "label"] = None
        return df

    def null_id(df):
        df = df.copy()
        df["window_id"] = df["window_id"].astype(object)
        df.loc[df.index[9], "window_id"] = None
        return df

    def bad_ts_string(df):
        df = df.copy()
        ts = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype(object)
        ts.iloc[12] = "yesterday-ish"
        df["timestamp"] = ts
        return df

    def null_ts(df):
        df = df.copy()
        df["timestamp"] = df["timestamp"].astype(object)
        df.loc[df.index[8], "timestamp"] = None
        return df

    def too_few(df):
        return df.iloc[:6].reset_index(drop=True)

    def string_values(df):
        df = df.copy()
        df["features"] = [[[str(v) for v in bar] for bar in x] for x in df["features"]]
        return df

    def expansion_out_of_range(df):
        df = df.copy()
        df["expansion_start"] = 30
        df.loc[df.index[1], "expansion_start"] = 200
        return df

    def expansion_backwards(df):
        df = df.copy()
        df["expansion_start"] = 50
        df["expansion_end"] = 60
        df.loc[df.index[2], "expansion_end"] = 40
        return df

    def expansion_float(df):
        df = df.copy()
        df["expansion_start"] = 30.5
        return df

    def empty(df):
        return df.iloc[:0]

    return [
        ("missing window_id", drop("window_id"), "missing required column 'window_id'"),
        ("missing label", drop("label"), "missing required column 'label'"),
        ("missing features", drop("features"), "missing required column 'features'"),
        ("missing timestamp", drop("timestamp"), "--assume-row-order"),
        ("window_id mistyped", setcol("window_id", lambda d: np.arange(len(d))), "column 'window_id': expected strings, found int64"),
        ("label mistyped", setcol("label", lambda d: np.arange(len(d)) % 2), "column 'label': expected strings"),
        ("timestamp mistyped", setcol("timestamp", lambda d: np.arange(len(d))), "column 'timestamp': expected a timestamp"),
        ("features mistyped", setcol("features", lambda d: ["x"] * len(d)), "column 'features': expected a nested list"),
        ("feature values are strings", string_values, "expected numbers inside the nested lists"),
        ("null window_id", null_id, "column 'window_id' is null"),
        ("duplicate window_id", dup_ids, "duplicated in rows [10, 11]"),
        ("null label", null_label, "column 'label' is null"),
        ("unparseable timestamp", bad_ts_string, "cannot parse 'yesterday-ish'"),
        ("null timestamp", null_ts, "column 'timestamp': cannot parse None"),
        ("null features row", null_feature, "column 'features' is null"),
        ("NaN in features", lambda d: set_feature(d, 3, 50, 2, float("nan")), "found null at time step 50, channel 2"),
        ("inf in features", lambda d: set_feature(d, 3, 51, 1, float("inf")), "found inf at time step 51, channel 1"),
        ("ragged T", ragged_t, "102 time steps, expected 105"),
        ("ragged C", ragged_c, "channel count other than 4"),
        ("series too short", short_t, "need T >= 9"),
        ("one class", one_label, "need at least 2 classes, found 'consolidation' x98"),
        ("class only in validation", class_only_in_val, "class 'expansion' has 1 validation windows but 0 train windows"),
        ("class once in train", class_once_in_train, "class 'expansion' has 1 validation windows but 1 train windows"),
        ("too few rows", too_few, "train windows left after purging"),
        ("high below close", high_below_close, "OHLC inconsistent at time step 20: high"),
        ("low above open", low_above_open, "OHLC inconsistent at time step 40: low"),
        ("cross-split duplicate", cross_split_dup, "has the same features as window_id"),
        ("expansion out of range", expansion_out_of_range, "column 'expansion_start': 200 is outside [0, 105)"),
        ("expansion backwards", expansion_backwards, "expansion_end 40 is before expansion_start 50"),
        ("expansion not integer", expansion_float, "column 'expansion_start': expected integers"),
        ("no rows", empty, "the file has no rows"),
    ]


MUTATIONS = _mutations()


@pytest.mark.parametrize("name,mutate,expected", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_bad_input_exits_2_and_names_the_problem(capsys, sample_frame, write_frame, name, mutate, expected):
    path = write_frame(mutate(sample_frame))
    code, out, err = run_validate(capsys, path)
    assert code == 2, (name, out, err)
    assert expected in err, err
    assert "Traceback" not in err
    assert path.name in err or "train.parquet" in err


@pytest.mark.parametrize("gate", ["validate", "baseline"])
@pytest.mark.parametrize("name,mutate,expected", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_gate_run_on_bad_input_exits_2_too(capsys, sample_frame, write_frame, tmp_path, name, mutate, expected, gate):
    """`moola gate run` (what the flows and the pod run) reports the same problems. Gate 0 records
    its failure in result.json; a training gate leaves no result that could pass for one."""
    path = write_frame(mutate(sample_frame))
    code = main(["gate", "run", gate, "--data", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2, (name, err)
    assert expected in err and "Traceback" not in err
    if gate == "validate":
        res = json.loads((tmp_path / "out" / "result.json").read_text())
        assert res["status"] == "failed" and any(expected in r for r in res["reasons"])
    else:
        assert not (tmp_path / "out" / "result.json").exists()


def test_file_not_found(capsys, tmp_path):
    code, _, err = run_validate(capsys, tmp_path / "nope.parquet")
    assert code == 2 and "nope.parquet: file not found" in err


def test_not_parquet(capsys, tmp_path):
    p = tmp_path / "train.parquet"
    p.write_text("window_id,label\nw1,a\n")
    code, _, err = run_validate(capsys, p)
    assert code == 2 and "train.parquet: not a readable Parquet file" in err


def test_val_size_too_large(capsys, sample_frame, write_frame):
    code, _, err = run_validate(capsys, write_frame(sample_frame), "--val-size", "500")
    assert code == 2 and "val_size: need 1 <= count < 98 rows, found 500" in err


def test_too_many_folds(capsys, sample_frame, write_frame):
    code, _, err = run_validate(capsys, write_frame(sample_frame), "--folds", "6")
    assert code == 2 and "6 folds of 20 validation windows need more than 120 rows, found 98" in err


def test_unlabeled_shape_mismatch(capsys, sample_frame, write_frame):
    lab = write_frame(sample_frame)
    un = sample_frame.drop(columns=["label", "base_window"]).copy()
    un["features"] = [list(x)[:50] for x in un["features"]]
    un["window_id"] = "u" + un["window_id"]
    unp = write_frame(un, "unlabeled.parquet")
    code, _, err = run_validate(capsys, lab, "--unlabeled", unp)
    assert code == 2 and "windows are T x C = 50 x 4, the labelled ones 105 x 4" in err


def test_unlabeled_all_in_validation_period(capsys, sample_frame, write_frame):
    lab = write_frame(sample_frame)
    un = sample_frame.drop(columns=["label", "base_window"]).copy()
    un["timestamp"] = un["timestamp"] + pd.Timedelta(days=365)
    unp = write_frame(un, "unlabeled.parquet")
    code, _, err = run_validate(capsys, lab, "--unlabeled", unp)
    assert code == 2 and "all 98 unlabelled windows reach into the validation period" in err


def test_every_problem_is_reported_not_only_the_first(capsys, sample_frame, write_frame):
    df = set_feature(sample_frame, 3, 50, 2, float("nan"))
    df.loc[df.index[10], "window_id"] = df.loc[df.index[11], "window_id"]
    df["label"] = df["label"].astype(object)
    df.loc[df.index[2], "label"] = None
    code, _, err = run_validate(capsys, write_frame(df))
    assert code == 2
    assert "duplicated in rows" in err and "column 'label' is null" in err and "found null at time step 50" in err
    assert "INVALID, 3 problem(s)" in err


def test_invalid_data_prints_no_traceback_in_a_real_process(tmp_path, sample_frame):
    import subprocess
    import sys
    p = tmp_path / "train.parquet"
    sample_frame.drop(columns=["label"]).to_parquet(p)
    r = subprocess.run([sys.executable, "-m", "moola.cli", "validate", str(p)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "missing required column 'label'" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout

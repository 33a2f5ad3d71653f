"""Shared fixtures: sample data written once per session, and a frame factory for mutations."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Tests never talk to a real Prefect Cloud or leave telemetry around.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from moola.data.sample import make_sample, write_sample  # noqa: E402


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sample")
    write_sample(d, seed=17, n_labeled=98, n_unlabeled=300)
    return d


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    lab, _ = make_sample(seed=17, n_labeled=98, n_unlabeled=0)
    return frame_from(lab)


def frame_from(lab: dict) -> pd.DataFrame:
    df = pd.DataFrame({
        "window_id": lab["ids"],
        "timestamp": pd.DatetimeIndex(lab["starts"]),
        "label": lab["labels"],
        "features": [x.tolist() for x in lab["X"]],
    })
    if lab.get("groups") is not None:
        df["base_window"] = lab["groups"]
    return df


@pytest.fixture
def write_frame(tmp_path):
    """write_frame(df) -> path of a Parquet file holding df."""
    def _write(df: pd.DataFrame, name: str = "train.parquet") -> Path:
        path = tmp_path / name
        df.to_parquet(path, index=False)
        return path
    return _write


def features_array(df: pd.DataFrame) -> np.ndarray:
    return np.array([np.array(f, dtype=float) for f in df["features"]])

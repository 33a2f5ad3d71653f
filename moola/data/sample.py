"""Deterministic synthetic 1-minute OHLC windows at NQ-like levels, and a Parquet writer.

Labelled windows carry a pattern in bars 30-75 (the seed's layout): ``consolidation`` is a
quiet, mean-reverting range; ``retracement`` is a directional leg followed by a partial
pull-back. Pattern strength varies and ~5% of labels are flipped, so the task is learnable
but not trivial. Two labelled windows per trading day share a ``base_window`` (the day), like
the original's ``{base}_{n}`` ids. The unlabelled pool comes from the trading days *before*
the labelled ones, so none of it reaches into the validation period.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

T_BARS = 105
PATTERN = slice(30, 75)
TZ = "America/New_York"
LABELED_STARTS = ("09:45", "12:00")  # two non-overlapping 105-minute windows per day
UNLABELED_STARTS = tuple(f"{9 + (30 + 30 * i) // 60:02d}:{(30 + 30 * i) % 60:02d}" for i in range(10))

SAMPLE_SEED = 17  # the built-in sample's data seed (`moola sample-data --seed`)


def write_windows(path: str | Path, ids, starts, X: np.ndarray, labels=None, groups=None,
                  expansion: np.ndarray | None = None) -> Path:
    """Write windows in the contract's layout; ``X`` is (N, T, C), ``starts`` datetime-like."""
    n, t, c = X.shape
    flat = pa.array(np.ascontiguousarray(X, dtype=np.float64).reshape(-1))
    bars = pa.ListArray.from_arrays(pa.array(np.arange(0, n * t * c + 1, c, dtype=np.int32)), flat)
    feats = pa.ListArray.from_arrays(pa.array(np.arange(0, n * t + 1, t, dtype=np.int32)), bars)
    cols = {"window_id": pa.array([str(i) for i in ids], pa.string()),
            "timestamp": pa.array(pd.DatetimeIndex(starts))}
    if labels is not None:
        cols["label"] = pa.array([str(x) for x in labels], pa.string())
    cols["features"] = feats
    if groups is not None:
        cols["base_window"] = pa.array([str(g) for g in groups], pa.string())
    if expansion is not None:
        cols["expansion_start"] = pa.array(expansion[:, 0].astype(np.int64))
        cols["expansion_end"] = pa.array(expansion[:, 1].astype(np.int64))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def _trading_days(end_before: pd.Timestamp | None, start: pd.Timestamp | None, n: int) -> list:
    if start is not None:
        return list(pd.bdate_range(start, periods=n))
    return list(pd.bdate_range(end=end_before - pd.Timedelta(days=1), periods=n))


def _window(rng: np.random.Generator, level: float, kind: str | None) -> tuple[np.ndarray, tuple[int, int]]:
    """One (T, 4) OHLC window; ``kind`` None draws a pattern at random (unlabelled pool)."""
    sigma = rng.uniform(2.5e-4, 4.5e-4)  # per-bar volatility of log price: ~5-9 points at 20k
    r = rng.normal(0.0, sigma, T_BARS)
    kind = kind or ("consolidation" if rng.random() < 0.57 else "retracement")
    a, b = PATTERN.start + rng.integers(-3, 4), PATTERN.stop + rng.integers(-3, 4)
    strength = rng.uniform(0.5, 1.5)
    if kind == "consolidation":
        quiet = rng.uniform(0.35, 0.65)
        r[a:b] *= quiet
        # mean reversion towards the level at the start of the pattern
        path = np.cumsum(r[a:b])
        r[a:b] -= 0.15 * strength * np.concatenate([[0.0], path[:-1]])
        expansion = (int(a), int(b - 1))
    else:
        leg_end = int(a + rng.integers(12, 22))
        direction = rng.choice([-1.0, 1.0])
        drift = direction * strength * 1.2 * sigma
        r[a:leg_end] += drift
        pull = rng.uniform(0.4, 0.7) * drift * (leg_end - a) / max(1, b - leg_end)
        r[leg_end:b] -= pull
        expansion = (int(a), int(leg_end))
    close = level * np.exp(np.cumsum(r))
    open_ = np.concatenate([[level], close[:-1]]) * np.exp(rng.normal(0, sigma * 0.1, T_BARS))
    wick = np.abs(rng.normal(0, sigma * 0.6, (2, T_BARS))) * close
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    ohlc = np.round(np.stack([open_, high, low, close], axis=1) * 4) / 4  # NQ ticks are 0.25
    return ohlc, expansion


FIRST_DAY = "2025-03-03"


def make_sample(seed: int = SAMPLE_SEED, n_labeled: int = 98, n_unlabeled: int = 1000,
                label_noise: float = 0.05, first_day: str = FIRST_DAY) -> tuple[dict, dict]:
    """Labelled and unlabelled windows as dicts of columns (see ``write_windows``); the labelled
    ones on the trading days from ``first_day`` (later days of the same market: another seed and
    a later ``first_day``)."""
    rng = np.random.default_rng(seed)
    first_day = pd.Timestamp(first_day)
    days = _trading_days(None, first_day, (n_labeled + 1) // len(LABELED_STARTS))
    level = 20_000.0
    # Exactly the seed's 56:42 class ratio; label noise swaps equal numbers both ways.
    n_cons = int(round(n_labeled * 56 / 98))
    kinds = rng.permutation(["consolidation"] * n_cons + ["retracement"] * (n_labeled - n_cons))
    labels = kinds.copy()
    k = int(round(label_noise * n_labeled / 2))
    cons, retr = np.flatnonzero(kinds == "consolidation"), np.flatnonzero(kinds == "retracement")
    k = min(k, len(cons), len(retr))
    labels[rng.choice(cons, k, replace=False)] = "retracement"
    labels[rng.choice(retr, k, replace=False)] = "consolidation"
    lab = {"ids": [], "starts": [], "X": [], "labels": [], "groups": [], "expansion": []}
    for i in range(n_labeled):
        day = days[i // len(LABELED_STARTS)]
        level *= np.exp(rng.normal(0, 0.004))
        x, exp = _window(rng, level, str(kinds[i]))
        kind = str(labels[i])
        base = day.strftime("%Y%m%d")
        lab["ids"].append(f"{base}_{i % len(LABELED_STARTS)}")
        lab["starts"].append(pd.Timestamp(f"{day.date()} {LABELED_STARTS[i % len(LABELED_STARTS)]}", tz=TZ))
        lab["X"].append(x)
        lab["labels"].append(kind)
        lab["groups"].append(base)
        lab["expansion"].append(exp)
    per_day = len(UNLABELED_STARTS)
    udays = _trading_days(first_day, None, (n_unlabeled + per_day - 1) // per_day)
    unl = {"ids": [], "starts": [], "X": []}
    level = 20_000.0
    for i in range(n_unlabeled):
        day = udays[i // per_day]
        level *= np.exp(rng.normal(0, 0.001))
        x, _ = _window(rng, level, None)
        unl["ids"].append(f"u{day.strftime('%Y%m%d')}_{i % per_day}")
        unl["starts"].append(pd.Timestamp(f"{day.date()} {UNLABELED_STARTS[i % per_day]}", tz=TZ))
        unl["X"].append(x)
    lab["X"], lab["expansion"] = np.stack(lab["X"]), np.array(lab["expansion"])
    unl["X"] = np.stack(unl["X"]) if unl["X"] else np.zeros((0, T_BARS, 4))
    return lab, unl


def write_sample(out_dir: str | Path, seed: int = SAMPLE_SEED, n_labeled: int = 98,
                 n_unlabeled: int = 1000) -> tuple[Path, Path]:
    """Write ``train.parquet`` and ``unlabeled.parquet`` into ``out_dir``."""
    lab, unl = make_sample(seed, n_labeled, n_unlabeled)
    out = Path(out_dir)
    a = write_windows(out / "train.parquet", lab["ids"], lab["starts"], lab["X"], lab["labels"],
                      lab["groups"], lab["expansion"])
    b = write_windows(out / "unlabeled.parquet", unl["ids"], unl["starts"], unl["X"])
    return a, b

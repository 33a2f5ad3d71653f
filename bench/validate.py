"""Gate 0 at scale: 10,000 labelled + 100,000 unlabelled windows of 105 x 4.

Prints the generation time (not timed against the goal), then Gate 0's wall time including
manifest writing. Goal: <= 30 s on the 2-core dev machine.

    .venv/bin/python bench/validate.py [--labeled 10000] [--unlabeled 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from moola.data.config import DataConfig
from moola.data.record import write_manifest
from moola.data.sample import write_windows
from moola.data.validate import validate


def ohlc_windows(rng: np.random.Generator, n: int, t: int = 105) -> np.ndarray:
    """(n, t, 4) consistent OHLC random walks around 20,000 (vectorised; fast to make)."""
    r = rng.normal(0, 3e-4, (n, t))
    close = 20_000 * np.exp(np.cumsum(r, axis=1))
    open_ = np.concatenate([np.full((n, 1), 20_000.0), close[:, :-1]], axis=1)
    wick = np.abs(rng.normal(0, 2.0, (2, n, t)))
    return np.stack([open_, np.maximum(open_, close) + wick[0],
                     np.minimum(open_, close) - wick[1], close], axis=2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labeled", type=int, default=10_000)
    ap.add_argument("--unlabeled", type=int, default=100_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        n_l, n_u = args.labeled, args.unlabeled
        # Unlabelled windows come first in time, then labelled ones, two hours apart.
        u_starts = pd.date_range("2015-01-01", periods=n_u, freq="30min", tz="UTC")
        l_starts = pd.date_range(u_starts[-1] + pd.Timedelta(days=1), periods=n_l, freq="2h", tz="UTC")
        labels = np.where(rng.random(n_l) < 0.57, "consolidation", "retracement")
        lab = write_windows(Path(d) / "train.parquet", [f"w{i}" for i in range(n_l)], l_starts,
                            ohlc_windows(rng, n_l), labels, groups=[f"b{i // 2}" for i in range(n_l)])
        unl = write_windows(Path(d) / "unlabeled.parquet", [f"u{i}" for i in range(n_u)], u_starts,
                            ohlc_windows(rng, n_u))
        gen = time.perf_counter() - t0
        print(f"generated {n_l} labelled + {n_u} unlabelled windows of 105 x 4 in {gen:.1f} s "
              f"({(lab.stat().st_size + unl.stat().st_size) / 1e6:.0f} MB of Parquet)")

        t0 = time.perf_counter()
        rep = validate(lab, unl, DataConfig())
        write_manifest(rep, Path(d) / "out")
        wall = time.perf_counter() - t0
        assert rep.ok, rep.problems[:5]
        print(f"split: {len(rep.split.train)} train / {len(rep.split.val)} val; "
              f"unlabelled kept {int(rep.pretrain_keep.sum())}")
        print(f"gate0 wall {wall:.2f} s (goal <= 30 s): ratio to goal {wall / 30:.2f}")


if __name__ == "__main__":
    main()

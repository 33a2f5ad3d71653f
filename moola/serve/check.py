"""Ship only what serves: a candidate folder, loaded in a fresh process exactly as ``moola predict``
loads a model, must reproduce the gate's own validation predictions (TFX calls this
infra-validation). A folder that loads differently (a tampered normaliser, a missing file, a
class order that changed) never becomes production.

The rule (``compare``): every probability within ``TOLERANCE`` (1e-4) of the gate's, and the same
predicted class on every window, except where the gate's two top probabilities are themselves
within ``TOLERANCE`` (a tie that rounding may break either way). Why 1e-4: a gate may run on a
pod's GPU and the check runs here on the CPU. The gates predict in full fp32 (no autocast, TF32
off: moola.train.fit.full_fp32), where the two devices differ only in summation order, about 1e-6 on
these models' probabilities; TF32 (PyTorch's default for cuDNN RNNs on H100/H200) moves them by
~1e-3, and a real change of the model (another normaliser, other weights) by far more. 1e-4 sits
two orders of magnitude above the first and one below the second. ``bench/gpu.sh`` measures the
cross-device difference on a real GPU (bench/RESULTS.md)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TOLERANCE = 1e-4


@dataclass
class ServingCheck:
    ok: bool
    detail: str


def check_serves(folder: Path, data: Path, assume_row_order: bool = False, tolerance: float = TOLERANCE,
                 python: str = sys.executable, timeout_s: float = 600) -> ServingCheck:
    """Run ``moola predict DATA --model FOLDER`` in a new interpreter and compare with the
    folder's ``predictions.parquet`` by the rule of ``compare``."""
    import pandas as pd
    folder, data = Path(folder), Path(data)
    gate_pred = folder / "predictions.parquet"
    if not gate_pred.is_file():
        return ServingCheck(False, f"{folder}: no predictions.parquet to compare with")
    with tempfile.TemporaryDirectory(prefix="moola-serve-") as d:
        out = Path(d) / "served.parquet"
        argv = [python, "-m", "moola.cli", "predict", str(data), "--model", str(folder), "--out", str(out),
                "--device", "cpu"] + (["--assume-row-order"] if assume_row_order else [])
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return ServingCheck(False, f"moola predict did not finish within {timeout_s:.0f} s")
        if proc.returncode != 0:
            lines = [x.strip() for x in proc.stderr.strip().splitlines() if x.strip()]
            return ServingCheck(False, f"moola predict failed in a fresh process (exit {proc.returncode}): "
                                + (lines[-1] if lines else "no message"))
        served = pd.read_parquet(out)
    return compare(pd.read_parquet(gate_pred), served, tolerance)


def compare(expected, served, tolerance: float = TOLERANCE) -> ServingCheck:
    """The serving rule (module docstring) on the gate's predictions and the served ones (pure)."""
    import numpy as np
    if "fold" in expected.columns:  # earlier folds were predicted by earlier folds' models
        expected = expected[expected["fold"] == expected["fold"].max()]
    merged = expected.merge(served, on="window_id", how="left", suffixes=("_gate", "_served"), indicator=True)
    missing = merged.loc[merged["_merge"] != "both", "window_id"].tolist()
    if missing:
        return ServingCheck(False, f"{len(missing)} validation window(s) not predicted, e.g. {missing[0]!r}")
    gate_cols = sorted(c for c in expected.columns if c.startswith("proba_"))
    served_cols = sorted(c for c in served.columns if c.startswith("proba_"))
    if gate_cols != served_cols:
        return ServingCheck(False, f"classes differ: the gate wrote {gate_cols}, the served model {served_cols}")
    gate_p = merged[[f"{c}_gate" for c in gate_cols]].to_numpy(dtype=float)
    diff = float(np.max(np.abs(gate_p - merged[[f"{c}_served" for c in gate_cols]].to_numpy(dtype=float))))
    top2 = np.sort(gate_p, axis=1)[:, -2:] if gate_p.shape[1] > 1 else np.zeros((len(gate_p), 2))
    tie = (top2[:, 1] - top2[:, 0]) <= tolerance
    flipped = (merged["predicted_gate"] != merged["predicted_served"]).to_numpy()
    changed = int((flipped & ~tie).sum())
    if changed or diff > tolerance:
        return ServingCheck(False, f"served predictions differ from the gate's on {len(merged)} validation windows: "
                            f"{changed} class(es) changed, max |probability difference| {diff:.2e} "
                            f"(tolerance {tolerance:g})")
    return ServingCheck(True, f"a fresh `moola predict` reproduces the gate's predictions on {len(merged)} "
                        f"validation windows (max |probability difference| {diff:.1e}, tolerance {tolerance:g})")

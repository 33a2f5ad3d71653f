"""The baseline recipe measured on more than one dataset: gates 1-5 per dataset and seed.

    .venv/bin/python bench/recipe.py [--datasets sample GunPoint ArrowHead ItalyPowerDemand]
        [--seeds 1 2 3] [--device cpu|cuda] [--budget device|gpu] [--gates ...] [--config JSON]
        [--n-unlabeled 1000]

Datasets:
- ``sample``: ``moola sample-data`` with data seed 16 + i for model seed i (17, 18, 19: three seeds vary
  both the data and the model), 3 walk-forward folds of 20 windows as the `gates` flow runs them;
  metrics are pooled over the 60 validation windows.
- UCR sets that sktime ships (GunPoint, ArrowHead, ItalyPowerDemand): the official train/test
  split reproduced through timestamps (train windows first) and ``--val-size`` = the test size,
  one fold. Gate 3 pretrains on the train windows themselves, unlabelled (no pool ships with
  them; nothing of the test split is used).

Each gate runs in this process through ``run_gate``, as the pipeline runs them, with the default
preset (``--config`` merges overrides, e.g. '{"fit": {"epochs": 150}}'). Prints, per dataset and
gate: accuracy and weighted F1 as mean and sample standard deviation over the seeds, the
majority-class accuracy, the number of degenerate runs and the mean wall time per gate run;
then the goals of issue 12 with their figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from moola.data.config import DataConfig
from moola.data.sample import write_sample, write_windows
from moola.decide.decision import DECISION_FOLDS
from moola.gates.config import GateConfig, _merge, resolve_budget
from moola.gates.run import run_gate

GATES = ("baseline", "minirocket", "pretrain", "transfer", "augment")
# published accuracies on the official splits (bench/RESULTS.md cites them; NOTES.md)
PUBLISHED_MINIROCKET = {"GunPoint": 0.99, "ArrowHead": 0.88, "ItalyPowerDemand": 0.96}
UCR_LOADERS = {"GunPoint": "load_gunpoint", "ArrowHead": "load_arrow_head",
               "ItalyPowerDemand": "load_italy_power_demand"}


def ucr_files(name: str, root: Path) -> tuple[Path, Path, DataConfig]:
    """The official split as a moola data file (train windows first in time) plus the train
    windows again, unlabelled, as Gate 3's pool."""
    import sktime.datasets as ds
    load = getattr(ds, UCR_LOADERS[name])
    Xtr, ytr = load(split="train", return_type="numpy3D")
    Xte, yte = load(split="test", return_type="numpy3D")
    X = np.concatenate([Xtr, Xte]).transpose(0, 2, 1)  # (N, C, T) -> (N, T, C)
    y = np.concatenate([ytr, yte])
    # one window a day; a window spans T seconds, so none overlaps the next
    starts = pd.date_range("2024-01-01", periods=len(X), freq="1D", tz="UTC")
    ids = [f"{name}{i:04d}" for i in range(len(X))]
    data = write_windows(root / name / "data.parquet", ids, starts, X, [f"class_{c}" for c in y])
    unl = write_windows(root / name / "unlabeled.parquet", [f"u{i}" for i in range(len(Xtr))],
                        starts[: len(Xtr)] - pd.Timedelta(hours=12), X[: len(Xtr)])
    return data, unl, DataConfig(val_size=len(Xte), bar_seconds=1)


def run_seed(data: Path, unl: Path, dcfg: DataConfig, cfg: GateConfig, out: Path, device: str,
             gates: tuple[str, ...] = GATES) -> dict:
    rows = {}
    for g in gates:
        folders = {"baseline": out / "baseline"} if g in ("minirocket", "transfer", "augment") else {}
        if g == "transfer":
            folders["encoder"] = out / "pretrain"
        t0 = time.perf_counter()
        r = run_gate(g, data, out / g, cfg, dcfg, device, unlabeled=unl, **folders)
        m = r.pooled or r.metrics
        rows[g] = {"acc": m.accuracy, "f1": m.f1_weighted, "wall": time.perf_counter() - t0,
                   "degenerate": bool(r.degenerate), "majority": r.majority_baseline.accuracy,
                   "status": r.status, "verdict": r.comparison.verdict if r.comparison else None}
    return rows


def summary(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["sample", *UCR_LOADERS])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--config", default="{}", help="JSON merged over the default preset")
    ap.add_argument("--budget", choices=["device", "gpu"], default="device",
                    help="gpu: the GPU budget's settings (width, epochs) on whatever device runs it; the "
                         "math is the same on a CPU (no bf16 at batch 16), only slower")
    ap.add_argument("--gates", nargs="+", default=list(GATES), choices=GATES,
                    help="a subset, in pipeline order (transfer needs pretrain, all but pretrain need baseline)")
    ap.add_argument("--n-unlabeled", type=int, default=1000, help="sample data's unlabelled pool")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    over = json.loads(args.config)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name in args.datasets:
            results[name] = []
            if name != "sample":
                data, unl, dcfg = ucr_files(name, root)
            for seed in args.seeds:
                if name == "sample":
                    data, unl = write_sample(root / f"sample{seed}", seed=16 + seed, n_unlabeled=args.n_unlabeled)
                    dcfg = DataConfig(folds=DECISION_FOLDS)
                cfg = GateConfig.model_validate(_merge({"seed": seed}, over))
                if args.budget == "gpu":
                    cfg = resolve_budget(cfg, "cuda")
                rows = run_seed(data, unl, dcfg, cfg, root / name / f"seed{seed}", args.device, tuple(args.gates))
                results[name].append(rows)
                print(f"{name} seed {seed}: " + ", ".join(f"{g} {r['f1']:.3f} ({r['wall']:.1f} s)"
                                                       for g, r in rows.items()), flush=True)
    print(f"\ndevice {args.device}, budget {args.budget}, config {json.dumps(over)}, seeds {args.seeds}")
    print("| dataset | gate | accuracy | weighted F1 | majority acc | degenerate | wall per run |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        for g in args.gates:
            rs = [run[g] for run in runs]
            print(f"| {name} | {g} | {summary([r['acc'] for r in rs])} | {summary([r['f1'] for r in rs])} | "
                  f"{statistics.mean(r['majority'] for r in rs):.3f} | {sum(r['degenerate'] for r in rs)}/{len(rs)} | "
                  f"{statistics.mean(r['wall'] for r in rs):.1f} s |")
    print("\ngoals:")
    for name, runs in results.items():
        def mean(g: str, k: str) -> float:
            return statistics.mean(run[g][k] for run in runs) if g in args.gates else float("nan")

        if name in PUBLISHED_MINIROCKET and "minirocket" in args.gates:
            print(f"- {name}: MiniRocket accuracy {mean('minirocket', 'acc'):.3f} vs published "
                  f"{PUBLISHED_MINIROCKET[name]:.2f} (within 0.02: {abs(mean('minirocket', 'acc') - PUBLISHED_MINIROCKET[name]) <= 0.02})")
        if "minirocket" in args.gates:
            verdicts = [run["minirocket"]["verdict"] for run in runs]
            print(f"- {name}: Gate 2's verdict on the same windows (control vs baseline, paired bootstrap): "
                  + ", ".join(f"{v} {verdicts.count(v)}/{len(verdicts)}" for v in sorted(set(verdicts), key=str)))
        if name == "GunPoint":
            print(f"- GunPoint: baseline accuracy {mean('baseline', 'acc'):.3f} (goal >= 0.90 CPU, >= 0.95 GPU)")
        if name == "sample" and "minirocket" in args.gates:
            gap = mean("baseline", "f1") - mean("minirocket", "f1")
            print(f"- sample: baseline F1 - MiniRocket F1 = {gap:+.3f} (goal >= -0.03)")
        for g in ("transfer", "augment"):
            if g in args.gates:
                print(f"- {name}: {g} F1 - baseline F1 = {mean(g, 'f1') - mean('baseline', 'f1'):+.3f}")
    bad = sum(run[g]["degenerate"] for runs in results.values() for run in runs for g in args.gates)
    print(f"- degenerate gate runs: {bad}")


if __name__ == "__main__":
    main()

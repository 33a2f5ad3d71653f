"""Wall time per gate on the sample data (default preset), on CPU and, when present, CUDA.

    .venv/bin/python bench/gates.py [--device cpu|cuda|both] [--n-unlabeled 1000]

Each gate runs in this process, one after another, as the pipeline runs them. The first
MiniRocket call in a fresh environment includes numba's compilation (cached afterwards).
Goal on the 2-core dev machine: gates 1-5 <= 90 s together.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from moola.data.config import DataConfig
from moola.data.sample import write_sample
from moola.gates.config import load_gate_config
from moola.gates.run import run_gate

ORDER = ("validate", "baseline", "minirocket", "pretrain", "transfer", "augment")


def run_all(data: Path, unl: Path, root: Path, device: str) -> dict[str, tuple[float, object]]:
    cfg, dcfg = load_gate_config("default"), DataConfig()
    out = {}
    for g in ORDER:
        kw = {}
        if g in ("minirocket", "transfer", "augment"):
            kw["baseline"] = root / "baseline"
        if g == "transfer":
            kw["encoder"] = root / "pretrain"
        t0 = time.perf_counter()
        res = run_gate(g, data, root / g, cfg, dcfg, device, unlabeled=unl, **kw)
        out[g] = (time.perf_counter() - t0, res)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "both"])
    ap.add_argument("--n-unlabeled", type=int, default=1000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    devices = ["cpu", "cuda"] if args.device == "both" else [args.device]
    with tempfile.TemporaryDirectory() as d:
        data, unl = write_sample(Path(d) / "data", n_unlabeled=args.n_unlabeled)
        for dev in devices:
            if dev == "cuda" and not torch.cuda.is_available():
                print("cuda: not available here, skipped")
                continue
            results = run_all(data, unl, Path(d) / dev, dev)
            name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
            print(f"device {dev} ({name}), {args.n_unlabeled} unlabelled windows")
            for g, (wall, res) in results.items():
                m = res.metrics
                extra = f" fit {res.fit_seconds:.2f} s  f1 {m.f1_weighted:.3f}" if m else ""
                print(f"  gate {g:<10} wall {wall:6.2f} s  {res.status}{extra}")
            total = sum(results[g][0] for g in ORDER[1:])
            print(f"gates 1-5 total {total:.1f} s (goal <= 90 s on 2-core CPU): ratio {total / 90:.2f}")


if __name__ == "__main__":
    main()

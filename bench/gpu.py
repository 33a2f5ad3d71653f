"""The GPU budget's timing goals of issue 12, on CUDA (run by bench/gpu.sh on a device machine).

    python bench/gpu.py

1. Baseline default training on the sample data (GPU budget: 128 units, 150 epochs), run twice;
   the second run is the warm figure (CUDA context, cuDNN plans and numba caches ready).
   Goal: fit <= 0.5 s warm.
2. Gate 3 on --n-unlabeled 11,873 windows x 50 epochs (the original scale). Goal: fit <= 20 s.
Prints the card's name first; every figure is the gate's own ``fit_seconds`` and wall.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from moola.data.config import DataConfig
from moola.data.sample import write_sample
from moola.gates.config import load_gate_config
from moola.gates.run import run_gate


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    if not torch.cuda.is_available():
        sys.exit("bench/gpu.py: no CUDA device here")
    print(f"card: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    cfg, dcfg = load_gate_config("default"), DataConfig()
    with tempfile.TemporaryDirectory() as d:
        data, unl = write_sample(Path(d) / "data", n_unlabeled=11_873)
        for i in (1, 2):
            t0 = time.perf_counter()
            r = run_gate("baseline", data, Path(d) / f"baseline{i}", cfg, dcfg, "cuda")
            print(f"baseline run {i} ({'warm' if i == 2 else 'cold'}): fit {r.fit_seconds:.2f} s, wall "
                  f"{time.perf_counter() - t0:.2f} s, F1 {r.metrics.f1_weighted:.3f}, "
                  f"epochs {r.details['fit']['epochs_run']} (goal: fit <= 0.5 s warm)", flush=True)
        t0 = time.perf_counter()
        r = run_gate("pretrain", data, Path(d) / "pretrain", cfg, dcfg, "cuda", unlabeled=unl)
        print(f"pretrain {r.details['windows']} windows x {r.details['fit']['epochs_run']} epochs: fit "
              f"{r.fit_seconds:.2f} s, wall {time.perf_counter() - t0:.2f} s, probe F1 {r.metrics.f1_weighted:.3f} "
              f"(goal: fit <= 20 s)", flush=True)


if __name__ == "__main__":
    main()

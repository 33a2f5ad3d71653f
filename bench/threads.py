"""Two baseline gates on one CPU machine: one after the other, then at the same time (issue 12).

With shared core claims (moola/train/cores.py) the second gate queues behind or shares with the first;
"without" gives each process its own MOOLA_CORES_DIR, so neither sees the other's claim: the old
behaviour, both spinning a full thread pool on the same cores. Goal: both at once take no longer
than one after the other + 10%.

    .venv/bin/python bench/threads.py [--folds 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def gate_cmd(data: Path, out: Path, folds: int, seed: int) -> list[str]:
    return [sys.executable, "-m", "moola.cli", "gate", "run", "baseline", "--data", str(data), "--out", str(out),
            "--device", "cpu", "--folds", str(folds), "--seed", str(seed)]


def run(cmds: list[list[str]], envs: list[dict], together: bool) -> float:
    t0 = time.perf_counter()
    if together:
        procs = [subprocess.Popen(c, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for c, e in zip(cmds, envs)]
        codes = [p.wait() for p in procs]
    else:
        codes = [subprocess.run(c, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
                 for c, e in zip(cmds, envs)]
    assert codes == [0, 0], codes
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        subprocess.run([sys.executable, "-m", "moola.cli", "sample-data", str(d / "s")], check=True,
                       stdout=subprocess.DEVNULL)
        data = d / "s" / "train.parquet"
        shared = {**os.environ, "MOOLA_CORES_DIR": str(d / "cores")}
        apart = [{**os.environ, "MOOLA_CORES_DIR": str(d / f"cores-{i}")} for i in range(2)]
        out = iter(range(100))

        def cmds():
            return [gate_cmd(data, d / f"o{next(out)}", args.folds, s) for s in (1, 2)]
        seq = run(cmds(), [shared, shared], together=False)
        both = run(cmds(), [shared, shared], together=True)
        old = run(cmds(), apart, together=True)
    print(f"{os.cpu_count()} cores, baseline gate x2, {args.folds} fold(s)")
    print(f"one after the other: {seq:.1f} s")
    print(f"at the same time, shared core claims: {both:.1f} s ({both / seq:.2f}x; goal <= 1.10x)")
    print(f"at the same time, without (each process its own claims): {old:.1f} s ({old / seq:.2f}x)")


if __name__ == "__main__":
    main()

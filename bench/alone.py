"""Each end-to-end test run alone: one pytest process per test id of tests/flows/ (its own Prefect
server, sshd, sample data, gate folders), ``--jobs`` at a time. Prints one line per test and a total;
exit 1 if any failed. The order dependence it catches: a test that passes only after another one.

    .venv/bin/python bench/alone.py [--jobs 2] [--path tests/flows]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collect(path: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", path],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return [line for line in out.splitlines() if "::" in line]


def run_one(test_id: str) -> tuple[str, int, float, str]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", test_id],
                       capture_output=True, text=True, cwd=ROOT)
    return test_id, r.returncode, time.monotonic() - t0, (r.stdout + r.stderr)[-1500:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="tests run at once (each its own pytest process)")
    ap.add_argument("--path", default="tests/flows", help="the tests to run one by one")
    args = ap.parse_args()
    ids = collect(args.path)
    t0, failed = time.monotonic(), []
    with ThreadPoolExecutor(args.jobs) as pool:
        for test_id, code, seconds, tail in pool.map(run_one, ids):
            print(f"{'PASS' if code == 0 else 'FAIL'} {seconds:6.1f} s  {test_id}", flush=True)
            if code != 0:
                failed.append(test_id)
                print(tail, flush=True)
    print(f"{len(ids) - len(failed)}/{len(ids)} passed alone, {args.jobs} at a time, in {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

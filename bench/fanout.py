"""Makespan of one run's units spread over N pods, N = 1, 2, 4 (loopback sshds as the pods).

    .venv/bin/python bench/fanout.py [--units 16] [--sleep-s 3]

The units are gate stand-ins dominated by waiting: each one connects to its pod over ssh (host key
verified, as a gate does) and runs `sleep S` there, so the two cores of a small machine do not cap
the speed-up. They are spread by the same code as the `gates` flow's gates (moola.pods.spread,
one Prefect task per unit named "uNN on podK", submitted to the flow's thread-pool task runner)
inside a real Prefect flow run against a real `prefect server start`.

Printed per N: makespan (first unit submitted -> last unit done), the ideal ceil(units/N) x S, the
mean per-unit overhead (a unit's task wall minus S: task start, ssh connect, Prefect's state
reports), the pod-time overhead per unit ((makespan x N - units x S) / units: also counts pods idle
at the tail), the units each pod ran; last line `ratio R` = makespan(N=1) / makespan(N=4).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.sshd_server import make_sshd  # noqa: E402
from tests.flows.conftest import start_server, stop_server  # noqa: E402

NS = (1, 2, 4)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--sleep-s", type=float, default=3.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="moola-fanout-bench-"))
    (root / "home").mkdir()
    env, server = start_server(root / "home")
    os.environ.update(env)  # this process's flow runs report to that server
    sshds = []
    try:
        for i in range(max(NS)):
            (root / f"pod{i}").mkdir()
            sshds.append(make_sshd(root / f"pod{i}", client_key=sshds[0].client_key if sshds else None))
            sshds[-1].start()
        known = root / "known_hosts"
        known.write_text("".join(s.known_hosts.read_text() for s in sshds))
        pods = [{"pod_id": f"pod{i + 1}", "host": "127.0.0.1", "port": s.port, "key": str(s.client_key),
                 "known_hosts": str(known)} for i, s in enumerate(sshds)]
        rows = {n: run(pods[:n], args.units, args.sleep_s) for n in NS}
    finally:
        for s in sshds:
            s.stop()
        from prefect.logging.handlers import APILogHandler
        APILogHandler().flush()  # the runs' last log lines, while the server still listens
        stop_server(server)
    print(f"\n{args.units} units of `sleep {args.sleep_s:g}` over N loopback pods (one run per N)")
    print(f"{'N':>3} {'makespan s':>11} {'ideal s':>8} {'unit overhead s':>16} {'pod-time overhead/unit s':>25}  "
          "units per pod")
    for n, r in rows.items():
        print(f"{n:>3} {r['makespan']:>11.2f} {r['ideal']:>8.1f} {r['unit_overhead']:>16.3f} "
              f"{r['pod_overhead']:>25.3f}  {r['per_pod']}")
    print(f"\nratio R {rows[1]['makespan'] / rows[max(NS)]['makespan']:.2f}")
    return 0


def run(pods: list[dict], units: int, sleep_s: float) -> dict:
    from prefect import flow, task

    from moola.pods.spread import Unit, spread
    from moola.remote.ssh import SSHRunner

    @task
    def stand_in(pod: dict, seconds: float) -> float:
        t0 = time.perf_counter()
        runner = SSHRunner(pod["host"], pod["port"], user=getpass.getuser(), key=Path(pod["key"]),
                           known_hosts=Path(pod["known_hosts"]), timeout=5.0)
        client = runner.connect()
        try:
            code, tail = runner.execute(client, ["sleep", f"{seconds:g}"])
        finally:
            client.close()
        if code != 0:
            raise RuntimeError(f"sleep on {pod['pod_id']} exited {code}: {tail}")
        return time.perf_counter() - t0

    @flow(name="fanout-bench", flow_run_name=f"fanout-{len(pods)}-pods")
    def fanout() -> dict:
        def start(unit: Unit, done: dict, pod: dict):
            fut = stand_in.with_options(task_run_name=f"{unit.name} on {pod['pod_id']}").submit(pod, sleep_s)
            return fut.wrapped_future, fut.result
        t0 = time.perf_counter()
        placed = spread([Unit(f"u{i:02d}") for i in range(units)], pods, start, lambda pod, exc: None,
                        name=lambda pod: pod["pod_id"])
        return {"makespan": time.perf_counter() - t0, "placed": placed}

    out = fanout()
    placed, makespan = out["placed"], out["makespan"]
    walls = [p["seconds"] for p in placed.placements]
    n = len(pods)
    return {"makespan": makespan, "ideal": math.ceil(units / n) * sleep_s,
            "unit_overhead": sum(walls) / len(walls) - sleep_s,
            "pod_overhead": (makespan * n - units * sleep_s) / units,
            "per_pod": [len(placed.units_on(p["pod_id"])) for p in pods]}


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(main())

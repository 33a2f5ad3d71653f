"""The check to run once with a real RunPod account (about 15 minutes, about $1 on an H100/H200)
before trusting moola with pods: one pod created exactly as the `runpod` worker creates it, then

  1. the pod answers SSH with the host key moola gave it (pinned; no known_hosts, no fingerprint)
  2. its watchdog runs from the pod's start command and guards this pod (it found the pod's key)
  3. torch on the pod satisfies moola's pin, and sees a GPU
  4. with no heartbeat, the watchdog terminates the pod by itself (within idle + 60 s)
  5. afterwards RunPod lists no pod of this check: nothing left running or billing

Each check prints PASS or FAIL; the pod is terminated on every exit path. Reads RUNPOD_API_KEY and
MOOLA_SSH_KEY (environment or .env) like the worker; RUNPOD_GPU_TYPES / RUNPOD_IMAGE pick the shape.

    bash bench/first_pod.sh                 # the real service
    bash bench/first_pod.sh --emulate       # the same checks against tests/fakes/runpod_emulator.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECKS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    CHECKS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def emulated(tmp: Path) -> tuple[object, dict]:
    """The emulator, a client key and the environment that points moola at them."""
    from tests.fakes.pod_image import make_image_python
    from tests.fakes.runpod_emulator import IMAGE_PYTHON_AT, RunPodEmulator
    make_image_python(tmp / "img", seen_at=IMAGE_PYTHON_AT)
    emu = RunPodEmulator(tmp / "pods", api_key="rp_first_pod_check", image=tmp / "img", hide=[tmp])
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "key")], check=True)
    return emu, {"RUNPOD_API_KEY": "rp_first_pod_check", "RUNPOD_API_BASE_URL": emu.url,
                 "MOOLA_SSH_KEY": str(tmp / "key")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulate", action="store_true", help="against the local RunPod emulator (no account)")
    ap.add_argument("--idle-s", type=float, default=120, help="the pod's watchdog idle time for check 4")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="moola-first-pod-"))
    emu = None
    if args.emulate:
        emu, env = emulated(tmp)
        os.environ.update(env)

    from moola.pods.api import PodLease, make_lease, pod_spec
    from moola.pods.fleet import guard_pod
    from moola.pods.runner import make_runner
    from moola.remote.retry import call_with_retry
    from moola.settings import load_settings
    s = load_settings()
    base = make_lease(s)
    name = f"moola-first-pod-{uuid.uuid4().hex[:8]}"
    spec = pod_spec(s, name=name, idle_stop_s=args.idle_s, boot_grace_s=args.idle_s + 300)
    lease = PodLease(base.api, spec, poll=5.0, wait_timeout=900)
    t0 = time.monotonic()
    try:
        host, port = call_with_retry(lease.acquire, retry_for=900)
        print(f"pod {lease.pod_id} ({lease.gpu_type}, ${lease.cost_per_hr:.2f}/h) at {host}:{port} after "
              f"{time.monotonic() - t0:.0f} s; its host key {lease.host_key.split()[1][:16]}...", flush=True)
        runner = make_runner("ssh", s, (host, port), host_key=lease.host_key)
        try:
            call_with_retry(lambda: runner.connect().close(), retry_for=180)
            check("1. SSH answers with the host key moola gave the pod", True, "pinned, nothing else trusted")
        except Exception as exc:
            check("1. SSH answers with the host key moola gave the pod", False, str(exc))
            return 1
        try:
            hb = call_with_retry(lambda: guard_pod(runner, lease.pod_id, args.idle_s), retry_for=120)
            check("2. the watchdog runs from the start command and guards this pod", True, hb)
        except Exception as exc:
            check("2. the watchdog runs from the start command and guards this pod", False, str(exc))
        client = runner.connect()
        try:
            code, out = runner.execute(client, [runner.python, "-c", "import json, torch; print(json.dumps({"
                                              "'torch': torch.__version__, 'cuda': torch.cuda.is_available()}))"])
        finally:
            client.close()
        from moola.pods.env import image_requirements_met
        try:
            got = json.loads(out.strip().splitlines()[-1])
            problem = image_requirements_met({"torch": got["torch"]})
            check("3. torch on the pod satisfies moola's pin and sees a GPU", not problem and (got["cuda"] or emu),
                  f"torch {got['torch']}, cuda {got['cuda']}" + (f"; {problem}" if problem else ""))
        except (ValueError, IndexError, KeyError):
            check("3. torch on the pod satisfies moola's pin and sees a GPU", False, f"exit {code}: {out[-300:]}")
        print(f"no heartbeat from now on: waiting up to {args.idle_s + 60:.0f} s for the watchdog to end the pod",
              flush=True)
        t_quiet, status = time.monotonic(), "RUNNING"
        while time.monotonic() - t_quiet < args.idle_s + 60:
            pod = lease.api.get_pod(lease.pod_id)
            status = (pod or {}).get("desiredStatus", "gone")
            if status != "RUNNING":
                break
            time.sleep(10)
        check("4. without heartbeats the watchdog ends the pod by itself", status in ("gone", "TERMINATED"),
              f"{status} after {time.monotonic() - t_quiet:.0f} s (idle {args.idle_s:.0f} s)")
    finally:
        if lease.pod_id and lease.api.get_pod(lease.pod_id) is not None:
            print("terminating the pod ourselves:", lease.release(), flush=True)
        left = [p for p in lease.api.get_pods() if p.get("name") == name]
        check("5. RunPod lists no pod of this check: nothing running or billing", not left,
              ", ".join(f"{p['id']} {p.get('desiredStatus')}" for p in left))
        if emu is not None:
            emu.close()
    failed = [n for n, ok, _ in CHECKS if not ok]
    print(f"{len(CHECKS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

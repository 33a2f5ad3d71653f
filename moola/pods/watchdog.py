"""The pod's own guard: terminate this pod when the orchestrator's heartbeats stop.

Standard library only, so it runs on any image. A pod moola creates starts it from its start
command (moola/pods/boot.py), in PID 1's environment, before any SSH connection:

    python3 /moola-watchdog.py --heartbeat /workspace/moola/heartbeat/<pod> --idle-stop-s 900 \\
        --boot-grace-s 900 --status /workspace/moola/heartbeat/<pod>.guard

The orchestrator touches the heartbeat file while a run uses the pod. The watchdog notes each
change of the file's mtime on its own monotonic clock (the pod's wall clock may jump): when no
change was seen for ``--idle-stop-s`` (no heartbeat file at all: ``--boot-grace-s`` after start)
it terminates the pod through RunPod's API from inside, falling back to stop when the pod-scoped key
may not terminate. A ``<heartbeat>.keep`` file means "stand down" (the run ended and the pod is kept
alive on purpose); a removed heartbeat is no such signal.

The key and pod id: ``RUNPOD_API_KEY`` / ``RUNPOD_POD_ID`` from this process's environment, else
from PID 1's (``/proc/1/environ``), else ``/etc/rp_environment`` (RunPod writes them there; an SSH
session does not see them). ``RUNPOD_API_BASE_URL`` overrides the address. The ``--status`` file
says which pod it guards and its pid, so its start can be verified; without a key it says so and
exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.request

API_BASE = "https://api.runpod.io"
NAMES = ("RUNPOD_API_KEY", "RUNPOD_POD_ID", "RUNPOD_API_BASE_URL")


def pod_environment(proc_environ: str = "/proc/1/environ", rp_environment: str = "/etc/rp_environment") -> dict:
    """RUNPOD_* as this process, PID 1 or /etc/rp_environment see them (first found wins, per name)."""
    out = {k: os.environ[k] for k in NAMES if os.environ.get(k)}
    try:
        with open(proc_environ, "rb") as f:
            for item in f.read().split(b"\0"):
                k, _, v = item.decode(errors="replace").partition("=")
                if k in NAMES and v:
                    out.setdefault(k, v)
    except OSError:
        pass
    try:
        with open(rp_environment) as f:
            for line in f:
                words = shlex.split(line.strip())
                if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                    k, _, v = words[1].partition("=")
                    if k in NAMES and v:
                        out.setdefault(k, v)
    except (OSError, ValueError):
        pass
    return out


def graphql(query: str, api_key: str, base: str, timeout: float = 20.0) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = json.loads(r.read())
    if body.get("errors"):
        raise RuntimeError(str(body["errors"])[:300])
    return body


def end_pod(pod_id: str, api_key: str, base: str) -> str:
    """Terminate the pod (nothing left billing); if that is refused, stop it. Which one it did."""
    pid = pod_id.replace('"', "")
    try:
        graphql('mutation { podTerminate(input: { podId: "%s" }) }' % pid, api_key, base)
        return "terminated"
    except Exception as exc:  # e.g. a pod-scoped key allowed to stop only
        print(f"watchdog: terminate refused ({type(exc).__name__}: {exc}); stopping instead", flush=True)
    graphql('mutation { podStop(input: { podId: "%s" }) { id desiredStatus } }' % pid, api_key, base)
    return "stopped"


def write_status(path: str | None, status: dict) -> None:
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(status, f)
    os.replace(tmp, path)


def mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None
    except OSError as exc:  # a flaky volume: not a reason to stop guarding
        print(f"watchdog: cannot stat {path}: {exc}", flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moola.pods.watchdog")
    ap.add_argument("--heartbeat", required=True)
    ap.add_argument("--idle-stop-s", type=float, required=True)
    ap.add_argument("--boot-grace-s", type=float, default=None, help="without any heartbeat yet (default: idle)")
    ap.add_argument("--pod-id", default=None)
    ap.add_argument("--status", default=None, help="JSON file saying which pod this guards (for verification)")
    ap.add_argument("--poll-s", type=float, default=None, help="how often to look (default: idle_stop_s / 10)")
    args = ap.parse_args(argv)
    env = pod_environment()
    pod_id, key = args.pod_id or env.get("RUNPOD_POD_ID"), env.get("RUNPOD_API_KEY")
    base = env.get("RUNPOD_API_BASE_URL", API_BASE)
    if not pod_id or not key:
        msg = "RUNPOD_POD_ID and RUNPOD_API_KEY not found (environment, /proc/1/environ, /etc/rp_environment)"
        write_status(args.status, {"pod_id": pod_id, "pid": os.getpid(), "error": msg})
        print(f"watchdog: {msg}", flush=True)
        return 2
    grace = args.boot_grace_s if args.boot_grace_s is not None else args.idle_stop_s
    poll = args.poll_s or max(1.0, min(args.idle_stop_s, grace) / 10)
    write_status(args.status, {"pod_id": pod_id, "pid": os.getpid(), "idle_stop_s": args.idle_stop_s,
                               "boot_grace_s": grace, "error": None})
    print(f"watchdog: pod {pod_id} ends itself after {args.idle_stop_s:.0f} s without a heartbeat "
          f"({grace:.0f} s before the first)", flush=True)
    seen, changed = mtime(args.heartbeat), time.monotonic()
    beats = seen is not None
    while True:
        time.sleep(poll)
        if os.path.exists(f"{args.heartbeat}.keep"):
            print("watchdog: keep-alive requested: standing down", flush=True)
            return 0
        now_m = mtime(args.heartbeat)
        if now_m is not None and now_m != seen:
            seen, changed, beats = now_m, time.monotonic(), True
        limit = args.idle_stop_s if beats else grace
        if time.monotonic() - changed <= limit:
            continue
        # said first: ending the pod ends this process too, before the answer may arrive
        print(f"watchdog: no heartbeat for {limit:.0f} s: ending pod {pod_id}", flush=True)
        try:
            how = end_pod(pod_id, key, base)
            print(f"watchdog: pod {pod_id} {how}", flush=True)
            return 0
        except Exception as exc:  # keep trying: a running pod costs money
            print(f"watchdog: ending pod {pod_id} failed ({type(exc).__name__}: {exc}); retrying", flush=True)


if __name__ == "__main__":
    sys.exit(main())

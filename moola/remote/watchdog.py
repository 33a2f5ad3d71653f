"""The pod's own guard: stop this pod when the orchestrator's heartbeats stop.

Started on the pod when it is acquired (standard library only, so it runs on any image):

    python -m moola.remote.watchdog --heartbeat /workspace/moola/heartbeat/<pod> --idle-stop-s 900

The orchestrator touches the heartbeat file while a run uses the pod. When the file is older than
``--idle-stop-s`` (the orchestrating machine died with everything on it, the network is gone), the
watchdog stops the pod through RunPod's API from inside the pod: ``RUNPOD_POD_ID`` and
``RUNPOD_API_KEY`` are set there by RunPod (``RUNPOD_API_BASE_URL`` overrides the address). A
removed heartbeat file means "stand down" (the run ended and the pod is kept alive on purpose).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

API_BASE = "https://api.runpod.io"


def stale(heartbeat: str, idle_stop_s: float, now: float) -> bool | None:
    """True when the last heartbeat is older than ``idle_stop_s``; None when the file is gone."""
    try:
        return now - os.stat(heartbeat).st_mtime > idle_stop_s
    except FileNotFoundError:
        return None


def stop_pod(pod_id: str, api_key: str, base: str, timeout: float = 20.0) -> None:
    """RunPod's podStop mutation (the same one the SDK sends); raises on any error."""
    query = 'mutation { podStop(input: { podId: "%s" }) { id desiredStatus } }' % pod_id.replace('"', "")
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = json.loads(r.read())
    if body.get("errors"):
        raise RuntimeError(str(body["errors"])[:300])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moola.remote.watchdog")
    ap.add_argument("--heartbeat", required=True)
    ap.add_argument("--idle-stop-s", type=float, required=True)
    ap.add_argument("--pod-id", default=os.environ.get("RUNPOD_POD_ID"))
    ap.add_argument("--poll-s", type=float, default=None, help="how often to look (default: idle_stop_s / 10)")
    args = ap.parse_args(argv)
    key, base = os.environ.get("RUNPOD_API_KEY"), os.environ.get("RUNPOD_API_BASE_URL", API_BASE)
    if not args.pod_id or not key:
        print("watchdog: RUNPOD_POD_ID and RUNPOD_API_KEY must be set (RunPod sets them in a pod)", flush=True)
        return 2
    poll = args.poll_s or max(1.0, args.idle_stop_s / 10)
    print(f"watchdog: pod {args.pod_id} stops itself after {args.idle_stop_s:.0f} s without a heartbeat", flush=True)
    while True:
        late = stale(args.heartbeat, args.idle_stop_s, time.time())
        if late is None:
            print("watchdog: heartbeat file removed: standing down", flush=True)
            return 0
        if late:
            try:
                stop_pod(args.pod_id, key, base)
                print(f"watchdog: no heartbeat for {args.idle_stop_s:.0f} s: pod {args.pod_id} stopped", flush=True)
                return 0
            except Exception as exc:  # keep trying: a running pod costs money
                print(f"watchdog: stopping pod {args.pod_id} failed ({type(exc).__name__}: {exc}); retrying",
                      flush=True)
        time.sleep(poll)


if __name__ == "__main__":
    sys.exit(main())

"""``moola pods`` and ``moola pods clean``: the pods moola created, from RunPod's own list.

Local lease records can be lost (a disk wiped, another machine); the account's pod list cannot.
Every pod moola creates is named ``moola-...`` (the worker: ``moola-<flow run id>``), so the API
alone finds them. A pod is *owned* while a lease record under ``<MOOLA_ARTIFACTS>/pods`` names it
and that record's owner process is alive (on this machine; a record written on another machine
counts as owned, since its process cannot be checked from here). ``clean`` terminates the moola
pods nobody owns: a terminated pod bills nothing; a stopped one still bills its volume.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

from moola.pods.api import VOLUME_USD_PER_GB_MONTH, PodAPI, is_gone

log = logging.getLogger("moola.pods.listing")

NAME_PREFIX = "moola-"


def owner_alive(owner: dict | None) -> bool:
    """Whether the process that wrote a lease record still runs (another machine's: assumed so)."""
    if not owner or not owner.get("pid"):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True


def lease_records(artifacts: Path) -> dict[str, dict]:
    """{pod id or pod name: lease record} from every record under ``<artifacts>/pods`` (unreadable
    ones skipped; a record written before its pod's create answer came has only the name)."""
    out = {}
    for p in sorted(Path(artifacts, "pods").rglob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            log.warning("unreadable lease record %s: skipped", p)
            continue
        if isinstance(rec, dict):
            for key in (rec.get("pod_id"), rec.get("name")):
                if key:
                    out[key] = {**rec, "record": str(p)}
    return out


def moola_pods(api: PodAPI, artifacts: Path) -> list[dict]:
    """Each pod of the account whose name starts with ``moola-``: id, name, status, GPU, uptime,
    the cost of its compute so far, what its volume bills per month, and who owns it."""
    records = lease_records(artifacts)
    out = []
    for pod in api.get_pods():
        if not str(pod.get("name") or "").startswith(NAME_PREFIX):
            continue
        rec = records.get(pod["id"]) or records.get(pod.get("name"))
        uptime = float(((pod.get("runtime") or {}).get("uptimeInSeconds")) or 0)
        volume = int(pod.get("volumeInGb") or 0)
        out.append({"pod_id": pod["id"], "name": pod.get("name"), "status": pod.get("desiredStatus"),
                    "gpu": (pod.get("machine") or {}).get("gpuDisplayName"),
                    "cost_per_hr": float(pod.get("costPerHr") or 0), "uptime_s": uptime,
                    "compute_usd": round(float(pod.get("costPerHr") or 0) * uptime / 3600, 4),
                    "volume_gb": volume, "volume_usd_month": round(volume * VOLUME_USD_PER_GB_MONTH, 2),
                    "owned": bool(rec and owner_alive(rec.get("owner"))),
                    "run_id": (rec or {}).get("run_id"), "record": (rec or {}).get("record")})
    return out


def clean(api: PodAPI, pods: list[dict]) -> list[dict]:
    """Terminate each unowned pod of ``pods``; [{pod_id, ended}] ('terminated', 'gone', or the error).
    Its lease record, if any, goes with it (the pod it names no longer exists)."""
    done = []
    for p in pods:
        if p["owned"]:
            continue
        try:
            api.terminate_pod(p["pod_id"])
            ended = "terminated"
        except Exception as exc:  # one pod's failure never stops the others
            ended = "gone" if is_gone(exc) else f"failed: {exc}"
        if p.get("record") and ended in ("terminated", "gone"):
            Path(p["record"]).unlink(missing_ok=True)
        done.append({"pod_id": p["pod_id"], "ended": ended})
    return done


def table(pods: list[dict]) -> str:
    if not pods:
        return "no moola pods in this RunPod account"
    rows = [f"{'pod':<16} {'status':<10} {'gpu':<22} {'up':>8} {'$/h':>6} {'so far':>8} {'volume':>14}  owner"]
    for p in pods:
        vol = f"{p['volume_gb']} GB ${p['volume_usd_month']:.2f}/mo" if p["volume_gb"] else "-"
        rows.append(f"{p['pod_id']:<16} {p['status'] or '?':<10} {(p['gpu'] or '?')[:22]:<22} "
                    f"{p['uptime_s'] / 60:>6.1f} m {p['cost_per_hr']:>6.2f} {p['compute_usd']:>8.4f} {vol:>14}  "
                    + (f"run {p['run_id']}" if p["owned"] else "none (`moola pods clean` terminates it)"))
    return "\n".join(rows)


"""The handlers of ``moola registry show|history|rollback`` and ``moola predict`` (parsed in cli.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moola.core.errors import ConfigError, DataError

ROLLBACK_HELP = """Return production to an earlier version.

Without --to: the most recent earlier production that was not itself rolled away from and is
not marked degraded. Repeated rollbacks therefore walk back through history (v3 -> v2 -> v1)
and never re-deploy the version just rolled away from; when none is left it says so.
With --to vN: that version of the production model, whatever its history."""


def _registry():
    from moola.settings import registry_from_settings
    return registry_from_settings()


def cmd_show(args: argparse.Namespace) -> int:
    reg = _registry()
    state = reg.state()
    if args.json:
        print(json.dumps(state.stored(), indent=2))
    else:
        p = state.production
        print("production: " + (f"{p.label} ({reg.folder(p)}), since {p.since}" if p else "none"))
        print(f"history: {len(state.history)} change(s)")
    return 0


def history_rows(reg) -> list[dict]:
    """Every decision (from experiment_results.jsonl, kept-production ones too) and every change of
    production no decision made (rollbacks), oldest first."""
    rows = []
    for rec in reg.records("decision"):
        d = rec["decision"]
        before, after = d.get("production_before"), d.get("production_after")
        rows.append({"at": rec.get("at", ""), "action": d["action"], "candidate": d.get("candidate"),
                     "production_before": _name(before), "production_after": _name(after),
                     "reason": (d.get("reasons") or [""])[0]})
    for h in reg.state().history:
        if h.action == "rollback":
            rows.append({"at": h.at, "action": "rollback", "candidate": None, "production_before": None,
                         "production_after": h.to.label if h.to else None, "reason": h.reason})
    return sorted(rows, key=lambda r: r["at"])


def _name(pointer: dict | None) -> str | None:
    return f"{pointer['name']} v{pointer['version']}" if pointer else None


def cmd_history(args: argparse.Namespace) -> int:
    rows = history_rows(_registry())
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        if r["action"] == "rollback":
            effect = f"production -> {r['production_after']}"
        elif r["production_after"] != r["production_before"]:
            effect = f"production {r['production_before'] or 'none'} -> {r['production_after'] or 'none'}"
        else:
            effect = f"production stays {r['production_after'] or 'none'}"
        cand = f" {r['candidate']}" if r["candidate"] and r["action"] == "ship" else ""
        print(f"{r['at']}  {r['action']}{cand}: {effect}  ({r['reason'][:120]})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    print(f"production: {_registry().rollback(args.to).label}")
    return 0


def check_out_file(out: Path, flag: str = "--out") -> None:
    """An output file path: not an existing folder, and its folder must be creatable."""
    if out.is_dir():
        raise ConfigError(f"{flag} {out}: is a folder; give a file path such as {out / 'predictions.parquet'}")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"{flag} {out}: {out.parent} is not a folder")


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from moola.data.load import load_windows
    from moola.serve.inference import predict_windows
    check_out_file(args.out)
    if args.model == "production":
        folder, expected = _registry().production_folder()
    else:
        folder = Path(args.model)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--model {folder}: is a file; expected a model folder or 'production'")
        # a folder inside the registry must still be the version it recorded
        expected = _registry().expected_manifest(folder) if folder.is_dir() else None
    from moola.data.config import DEFAULT_DATA
    w = load_windows(args.data, labeled=False, assume_row_order=args.assume_row_order,
                     bar_seconds=DEFAULT_DATA.bar_seconds)
    if w.problems:
        raise DataError(w.problems)
    proba, classes = predict_windows(folder, w.X, str(args.data), args.device, expected)
    df = pd.DataFrame({"window_id": w.ids, "predicted": np.array(classes)[proba.argmax(1)]})
    for j, c in enumerate(classes):
        df[f"proba_{c}"] = proba[:, j]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(args.out, index=False)
    print(f"wrote {len(df)} predictions to {args.out}")
    return 0

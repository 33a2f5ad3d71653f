"""``moola registry show|history|rollback`` and ``moola predict``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .errors import ConfigError, DataError


def _registry(args):
    from .registry import Registry
    return Registry(os.environ.get("MOOLA_ARTIFACTS", "artifacts"))


def cmd_show(args: argparse.Namespace) -> int:
    state = _registry(args).read()
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        p = state["production"]
        print("production: " + (f"{p['name']} v{p['version']} ({p['path']}), since {p['since']}" if p else "none"))
        print(f"history: {len(state['history'])} change(s)")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    for h in _registry(args).read()["history"]:
        to = f"{h['to']['name']} v{h['to']['version']}" if h["to"] else "none"
        print(f"{h['at']}  {h['action']:<9} -> {to}  ({h['reason']})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    p = _registry(args).rollback(args.to)["production"]
    print(f"production: {p['name']} v{p['version']}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from .data.load import load_windows
    from .inference import predict_windows
    if args.model == "production":
        prod = _registry(args).read()["production"]
        if prod is None:
            raise ConfigError("predict --model production: no production model yet (see `moola registry show`)")
        folder = Path(prod["path"])
    else:
        folder = Path(args.model)
    w = load_windows(args.data, labeled=False)
    if w.problems:
        raise DataError(w.problems)
    proba, classes = predict_windows(folder, w.X, str(args.data), args.device)
    df = pd.DataFrame({"window_id": w.ids, "predicted": np.array(classes)[proba.argmax(1)]})
    for j, c in enumerate(classes):
        df[f"proba_{c}"] = proba[:, j]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(args.out, index=False)
    print(f"wrote {len(df)} predictions to {args.out}")
    return 0


def add_registry_commands(sub) -> None:
    r = sub.add_parser("registry", help="the production pointer and model versions (MOOLA_ARTIFACTS)")
    rs = r.add_subparsers(dest="registry_command", required=True)
    s = rs.add_parser("show")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)
    rs.add_parser("history").set_defaults(func=cmd_history)
    rb = rs.add_parser("rollback")
    rb.add_argument("--to", help="vN of the production model (default: the previous production)")
    rb.set_defaults(func=cmd_rollback)
    p = sub.add_parser("predict", help="inference with the production model or a model folder")
    p.add_argument("data", type=Path)
    p.add_argument("--model", default="production")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

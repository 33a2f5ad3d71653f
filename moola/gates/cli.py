"""``moola gate run`` and ``moola compare``: argument parsing only; the work is in run.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import GATES


def add_gate_commands(sub) -> None:
    from ..cli import add_data_options
    g = sub.add_parser("gate", help="run one gate (the program a GPU pod executes)")
    gsub = g.add_subparsers(dest="gate_command", required=True)
    r = gsub.add_parser("run", help="run GATE and write DIR (exit 0 passed, 3 failed, 2 invalid data)")
    r.add_argument("gate", choices=list(GATES))
    r.add_argument("--data", type=Path, required=True)
    add_data_options(r)
    r.add_argument("--config", type=Path, help="JSON or TOML overrides of the gate config")
    r.add_argument("--preset", default="default", help="default | seed-smoke")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--seed", type=int)
    r.add_argument("--baseline", type=Path, help="output folder of gate baseline (for comparisons)")
    r.add_argument("--encoder", type=Path, help="output folder of gate pretrain (for transfer)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--runner", default=None, help="here | local | ssh (default: MOOLA_RUNNER, else here: this process)")
    r.add_argument("--retry-for", type=float, default=0.0,
                   help="with a remote runner: keep retrying transient errors for this many seconds")
    r.set_defaults(func=cmd_gate_run)

    c = sub.add_parser("compare", help="paired bootstrap of two predictions files (B - A)")
    c.add_argument("a", type=Path, help="predictions.parquet or a gate folder")
    c.add_argument("b", type=Path)
    c.add_argument("--n-boot", type=int, default=2000)
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_compare)


def _default_runner() -> str:
    """MOOLA_RUNNER from the environment or .env; on a pod (no pydantic-settings) the environment."""
    try:
        from ..settings import Settings
    except ImportError:
        import os
        return os.environ.get("MOOLA_RUNNER", "here")
    from ..settings import load_settings
    return load_settings().moola_runner


def _check_gate_folders(args: argparse.Namespace) -> None:
    """--baseline / --encoder must be gate output folders: say so before anything runs or ships."""
    from ..atomic import check_replaceable
    from ..errors import ConfigError
    check_replaceable(args.out)  # before any work, whichever runner: never replace the user's files
    for opt, gate, needs in (("baseline", "baseline", "result.json"), ("encoder", "pretrain", "encoder.json")):
        folder = getattr(args, opt, None)
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise ConfigError(f"--{opt} {folder}: no such folder (expected the output folder of gate {gate})")
        if not (Path(folder) / needs).is_file():
            raise ConfigError(f"--{opt} {folder}: no {needs} there (expected the output folder of gate {gate})")


def cmd_gate_run(args: argparse.Namespace) -> int:
    from ..cli import data_config
    from ..config import load_gate_config
    cfg = load_gate_config(args.preset, args.config, args.seed)
    dcfg = data_config(args)
    _check_gate_folders(args)
    runner = args.runner or _default_runner()
    if runner in ("here", "inline"):
        from .run import run_gate
        result = run_gate(args.gate, args.data, args.out, cfg, dcfg, args.device, args.unlabeled,
                          args.baseline, args.encoder)
    else:
        from ..remote.cli import run_remote
        result = run_remote(runner, args)
    m = result.metrics
    summary = f"gate {result.gate}: {result.status.upper()}"
    if m is not None:
        summary += (f"  accuracy {m.accuracy:.3f}  f1_weighted {m.f1_weighted:.3f}  "
                    f"(majority {result.majority_baseline.f1_weighted:.3f})  degenerate {result.degenerate}")
    print(summary)
    for r in result.reasons:
        print(f"  - {r}")
    return result.exit_code


def _predictions(path: Path):
    import pandas as pd
    from ..errors import DataError
    p = path / "predictions.parquet" if path.is_dir() else path
    try:
        df = pd.read_parquet(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read predictions ({exc})") from exc
    missing = [c for c in ("window_id", "label", "predicted") if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {', '.join(missing)}; expected a gate's predictions.parquet")
    return df


def cmd_compare(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, DataError
    if args.n_boot < 100:
        raise ConfigError(f"--n-boot {args.n_boot}: need at least 100 resamples for a confidence interval")
    from ..metrics import paired_bootstrap
    a, b = _predictions(args.a), _predictions(args.b)
    merged = a.merge(b, on="window_id", suffixes=("_a", "_b"))
    if len(merged) != len(a) or len(merged) != len(b):
        raise DataError(f"{args.a} and {args.b} do not cover the same windows "
                        f"({len(a)} and {len(b)} rows, {len(merged)} in common)")
    if (merged["label_a"] != merged["label_b"]).any():
        raise DataError("the two predictions files disagree on true labels")
    out = paired_bootstrap(merged["label_a"].tolist(), merged["predicted_a"].tolist(),
                           merged["predicted_b"].tolist(), args.n_boot, args.seed)
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0

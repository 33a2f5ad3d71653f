"""The one ``moola`` command.

Exit codes: 0 success (gate passed), 2 invalid data or usage, 3 gate failed its criteria,
1 unexpected internal error. User errors print one line per problem and no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import MoolaError

log = logging.getLogger("moola")


def _val_size(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int count or a fraction, found {text!r}")


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unlabeled", type=Path, help="unlabelled windows (Parquet) for pretraining")
    p.add_argument("--val-size", type=_val_size, default=0.2, help="validation count or fraction (0.2)")
    p.add_argument("--folds", type=int, default=1, help="expanding-window folds (1)")
    p.add_argument("--bar-seconds", type=int, default=60, help="seconds per bar (60)")
    p.add_argument("--assume-row-order", action="store_true",
                   help="the file has no timestamps: trust row order as time order")


def data_config(args: argparse.Namespace):
    from .data.validate import DataConfig
    from pydantic import ValidationError
    try:
        return DataConfig(val_size=args.val_size, folds=args.folds, bar_seconds=args.bar_seconds,
                          assume_row_order=args.assume_row_order)
    except ValidationError as exc:
        from .errors import config_error
        raise config_error(exc, flags=True) from exc


def cmd_validate(args: argparse.Namespace) -> int:
    from .data.manifest import write_manifest
    from .data.validate import validate
    rep = validate(args.data, args.unlabeled, data_config(args))
    if rep.ok:  # the same memory check the gates make (moola/memory.py), with the default config
        from .config import load_gate_config, resolve_budget
        from .memory import memory_problem
        lab = rep.labeled
        problem = memory_problem(lab.n, lab.shape[0], lab.shape[1], resolve_budget(load_gate_config(), "cpu"),
                                 pretrain=args.unlabeled is not None)
        from .data.validate import Check
        rep.checks.append(Check("training memory fits max_memory_gb",
                                [f"{lab.path.name}: column 'features': {problem}"] if problem else []))
    if args.out:
        path = write_manifest(rep, args.out)
        print(f"manifest: {path}")
    if not rep.ok:
        print(f"Gate 0: INVALID, {len(rep.problems)} problem(s):", file=sys.stderr)
        for line in rep.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    lab, f = rep.labeled, rep.split
    T, C = lab.shape
    print(f"Gate 0: valid. {lab.n} labelled windows of {T} x {C}; split {len(f.train)} train / "
          f"{len(f.val)} val, {len(f.purged)} purged" + (f", {len(rep.folds)} folds" if len(rep.folds) > 1 else ""))
    if rep.unlabeled is not None and rep.pretrain_keep is not None:
        kept = int(rep.pretrain_keep.sum())
        print(f"unlabelled: {kept} of {rep.unlabeled.n} windows end before validation and may be "
              f"used for pretraining ({rep.unlabeled.n - kept} excluded)")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    from .data.sample import write_sample
    from .errors import ConfigError
    if args.n_labeled < 20:
        raise ConfigError(f"--n-labeled {args.n_labeled}: need at least 20 windows for a train/validation split")
    if args.n_unlabeled < 0:
        raise ConfigError(f"--n-unlabeled {args.n_unlabeled}: expected 0 or more")
    if args.dir.exists() and not args.dir.is_dir():
        raise ConfigError(f"sample-data {args.dir}: exists and is not a folder")
    a, b = write_sample(args.dir, seed=args.seed, n_labeled=args.n_labeled, n_unlabeled=args.n_unlabeled)
    print(f"wrote {a} and {b}")
    return 0


def cmd_remote_check(args: argparse.Namespace) -> int:
    from .remote.check import remote_check
    from .remote.ssh import SSHRunner
    from .settings import Settings
    report = remote_check(SSHRunner.from_settings(Settings()), install=args.install)
    print(json.dumps(report, indent=2))
    return 0 if not report["missing"] else 2


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="moola", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"moola {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="Gate 0: check data and split it (exit 0 valid, 2 invalid)")
    v.add_argument("data", type=Path, help="labelled windows (Parquet)")
    add_data_options(v)
    v.add_argument("--out", type=Path, help="folder for manifest.json")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("sample-data", help="write deterministic synthetic OHLC windows")
    s.add_argument("dir", type=Path)
    s.add_argument("--seed", type=int, default=17)
    s.add_argument("--n-labeled", type=int, default=98)
    s.add_argument("--n-unlabeled", type=int, default=1000,
                   help="unlabelled pool size (1000 keeps the CPU demo quick; 11873 = original scale)")
    s.set_defaults(func=cmd_sample_data)

    from .gates.cli import add_gate_commands
    add_gate_commands(sub)

    r = sub.add_parser("remote", help="the remote host (MOOLA_SSH_* settings)")
    rsub = r.add_subparsers(dest="remote_command", required=True)
    rc = rsub.add_parser("check", help="report the remote Python, GPU and core dependencies")
    rc.add_argument("--install", action="store_true", help="pip-install missing core dependencies")
    rc.set_defaults(func=cmd_remote_check)

    from .registry_cli import add_registry_commands
    add_registry_commands(sub)

    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except MoolaError as exc:
        lines = getattr(exc, "problems", None) or str(exc).splitlines() or [type(exc).__name__]
        print(f"error: {type(exc).__name__}", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a disk, permission or path problem outside moola's own checks
        if args.verbose:
            raise
        print(f"error: {type(exc).__name__}", file=sys.stderr)
        print(f"  {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc} (rerun with -v for details)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The one ``moola`` command: every subcommand's parser is built here, and only here.

Exit codes (moola.core.errors.EXIT_CODES, shown in ``moola --help``): 0 done, 2 usage, configuration or invalid
input, 3 a gate failed its criteria, 1 infrastructure (disk, network, a remote host, the
registry's own files) or an internal error. User errors print one line per problem and no
traceback.
Handlers turn the parsed strings into typed values (DataConfig, GateCall) at once and hand
those to the code that does the work.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from moola.core.errors import EXIT_CODES, EXIT_INFRA, EXIT_INVALID, ConfigError, MoolaError, error_lines

log = logging.getLogger("moola")

DESCRIPTION = """Train and gate small time-series classifiers, and decide whether one replaces production.

The full pipeline runs as a Prefect flow (`python -m flows.gates`, or `make demo`); these commands
are its parts: check data (validate), run one gate (gate run), compare two predictions files,
look at and move the registry, predict with production, list and clean RunPod pods."""

EPILOG = "exit codes:\n" + "\n".join(f"  {code}  {what}" for code, what in EXIT_CODES.items()) + \
    "\n\n-v/--verbose (debug logging) is accepted before or after any subcommand; --json on the commands that report."


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
    """Data options default to None: DataConfig owns the defaults (shown in --help from there)."""
    from moola.data.config import DataConfig
    d = DataConfig()
    p.add_argument("--unlabeled", type=Path, help="unlabelled windows (Parquet) for pretraining")
    p.add_argument("--val-size", type=_val_size, help=f"validation count or fraction ({d.val_size})")
    p.add_argument("--folds", type=int, help=f"expanding-window folds ({d.folds})")
    p.add_argument("--bar-seconds", type=int, help=f"seconds per bar ({d.bar_seconds})")
    p.add_argument("--assume-row-order", action="store_true",
                   help="the file has no timestamps: trust row order as time order")


def data_config(args: argparse.Namespace):
    """The typed DataConfig of the options given; a bad value names its flag."""
    from moola.data.config import load_data_config
    given = {k: getattr(args, k) for k in ("val_size", "folds", "bar_seconds") if getattr(args, k) is not None}
    return load_data_config(flags=True, **given, assume_row_order=args.assume_row_order)


# -- validate, sample-data ---------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from moola.data.record import write_manifest
    from moola.data.validate import Check, validate
    from moola.gates.config import load_gate_config, resolve_budget
    from moola.train.memory import memory_problem
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a file; give a folder for manifest.json")
    rep = validate(args.data, args.unlabeled, data_config(args))
    if rep.ok:  # the same memory check the gates make (moola/train/memory.py), with the default config
        lab = rep.labeled
        problem = memory_problem(lab.n, lab.shape[0], lab.shape[1], resolve_budget(load_gate_config(), "cpu"),
                                 pretrain=args.unlabeled is not None)
        rep.checks.append(Check("training memory fits max_memory_gb",
                                [f"{lab.path.name}: column 'features': {problem}"] if problem else []))
    path = write_manifest(rep, args.out) if args.out else None
    if args.json:
        print(json.dumps(validation_summary(rep, path), indent=2))
        return 0 if rep.ok else 2
    if path:
        print(f"manifest: {path}")
    if not rep.ok:
        print(f"Gate 0: INVALID, {len(rep.problems)} problem(s):", file=sys.stderr)
        for line in rep.problems:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INVALID
    lab, f = rep.labeled, rep.split
    T, C = lab.shape
    print(f"Gate 0: valid. {lab.n} labelled windows of {T} x {C}; split {len(f.train)} train / "
          f"{len(f.val)} val, {len(f.purged)} purged" + (f", {len(rep.folds)} folds" if len(rep.folds) > 1 else ""))
    if rep.unlabeled is not None and rep.pretrain_keep is not None:
        kept = int(rep.pretrain_keep.sum())
        print(f"unlabelled: {kept} of {rep.unlabeled.n} windows end before validation and may be "
              f"used for pretraining ({rep.unlabeled.n - kept} excluded)")
    return 0


def validation_summary(rep, manifest: Path | None) -> dict:
    """What `moola validate --json` prints: valid, each problem, the split's sizes."""
    out = {"valid": rep.ok, "problems": rep.problems, "manifest": str(manifest) if manifest else None}
    if rep.ok:
        f = rep.split
        out.update(windows=rep.labeled.n, shape=list(rep.labeled.shape), train=len(f.train), val=len(f.val),
                   purged=len(f.purged), folds=len(rep.folds))
    return out


def cmd_sample_data(args: argparse.Namespace) -> int:
    from moola.core.errors import ConfigError
    from moola.data.sample import write_sample
    if args.n_labeled < 20:
        raise ConfigError(f"--n-labeled {args.n_labeled}: need at least 20 windows for a train/validation split")
    if args.n_unlabeled < 0:
        raise ConfigError(f"--n-unlabeled {args.n_unlabeled}: expected 0 or more")
    if args.dir.exists() and not args.dir.is_dir():
        raise ConfigError(f"sample-data {args.dir}: exists and is not a folder")
    a, b = write_sample(args.dir, seed=args.seed, n_labeled=args.n_labeled, n_unlabeled=args.n_unlabeled)
    print(f"wrote {a} and {b}")
    return 0


# -- gate run, compare ---------------------------------------------------------------------------
def _check_gate_folders(args: argparse.Namespace) -> None:
    """--out may be replaced; --baseline / --encoder must be gate output folders: say so before
    anything runs or ships."""
    from moola.core.errors import ConfigError
    from moola.core.seal import check_replaceable
    from moola.gates.graph import INPUT_ROLES
    check_replaceable(args.out)  # before any work, whichever runner: never replace the user's files
    for opt, gate in INPUT_ROLES.items():
        folder = getattr(args, opt, None)
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise ConfigError(f"--{opt} {folder}: no such folder (expected the output folder of gate {gate.name})")
        if not (Path(folder) / gate.marks).is_file():
            raise ConfigError(f"--{opt} {folder}: no {gate.marks} there (expected the output folder of gate {gate.name})")


def _default_runner() -> str:
    """MOOLA_RUNNER from the environment or .env; on a pod (no pydantic-settings) the environment."""
    import os

    from moola.remote.kinds import DEFAULT_RUNNER
    try:
        from moola.settings import load_settings
    except ImportError:
        return os.environ.get("MOOLA_RUNNER", DEFAULT_RUNNER)
    return load_settings().moola_runner


def cmd_gate_run(args: argparse.Namespace) -> int:
    from moola.gates.call import GateCall
    from moola.gates.config import load_gate_config
    from moola.gates.result import read_result
    from moola.remote.kinds import ON_THIS_MACHINE, check_runner
    from moola.remote.retry import check_retry_for
    from moola.remote.runner import on_this_machine
    load_gate_config(args.preset, args.config, args.seed)  # a bad preset or config fails before anything
    call = GateCall(gate=args.gate, data=args.data, out=args.out, unlabeled=args.unlabeled, baseline=args.baseline,
                    encoder=args.encoder, config=args.config, data_config=data_config(args), preset=args.preset,
                    seed=args.seed, device=args.device)
    runner = check_runner(args.runner or _default_runner())
    check_retry_for(args.retry_for)
    _check_gate_folders(args)
    if runner in ON_THIS_MACHINE:
        folder = on_this_machine(runner).run_gate(call)
    else:  # imported here: a pod runs this command without ssh, the RunPod SDK or pydantic-settings
        from moola.pods.runner import run_call
        from moola.settings import load_settings
        folder = run_call(runner, call, load_settings(), args.retry_for)
    result = read_result(folder)
    if args.json:
        print(result.model_dump_json(indent=2))
        return result.exit_code
    m = result.metrics
    summary = f"gate {result.gate}: {result.status.upper()}"
    if m is not None:
        summary += (f"  accuracy {m.accuracy:.3f}  f1_weighted {m.f1_weighted:.3f}  "
                    f"(majority {result.majority_baseline.f1_weighted:.3f})  degenerate {result.degenerate}")
    print(summary)
    for r in result.reasons:
        print(f"  - {r}")
    return result.exit_code


def cmd_compare(args: argparse.Namespace) -> int:
    from moola.decide.compare import compare_predictions
    json.dump(compare_predictions(args.a, args.b, args.n_boot, args.seed).model_dump(mode="json"), sys.stdout,
              indent=2)
    print()
    return 0


def cmd_remote_check(args: argparse.Namespace) -> int:
    from moola.remote.check import remote_check
    from moola.remote.ssh import SSHRunner
    from moola.settings import load_settings
    report = remote_check(SSHRunner.from_settings(load_settings()), install=args.install)
    print(json.dumps(report, indent=2))
    return 0 if not report["missing"] else 2


# -- the parser ----------------------------------------------------------------------------------
def _gate_parsers(sub) -> None:
    from moola.gates.graph import GATES
    from moola.remote.kinds import RUNNER_KINDS
    g = sub.add_parser("gate", help="run one gate (the program a GPU pod executes)")
    gsub = g.add_subparsers(dest="gate_command", required=True)
    r = gsub.add_parser("run", help="run GATE and write DIR (exit 0 passed, 3 failed, 2 invalid data)")
    r.add_argument("gate", choices=list(GATES), help="which gate")
    r.add_argument("--data", type=Path, required=True, help="labelled windows (Parquet)")
    add_data_options(r)
    r.add_argument("--config", type=Path, help="JSON or TOML overrides of the gate config")
    r.add_argument("--preset", default="default", help="default | seed-smoke")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--seed", type=int, help="training seed (default: the config's)")
    r.add_argument("--json", action="store_true", help="print the gate's result.json instead of a summary")
    r.add_argument("--baseline", type=Path, help="output folder of gate baseline (for comparisons)")
    r.add_argument("--encoder", type=Path, help="output folder of gate pretrain (for transfer)")
    r.add_argument("--out", type=Path, required=True,
                   help="absent, empty, or an earlier gate folder (anything else is refused)")
    r.add_argument("--runner", default=None,
                   help=f"{' | '.join(RUNNER_KINDS)} (default: MOOLA_RUNNER, else here: this process)")
    r.add_argument("--retry-for", type=float, default=0.0,
                   help="with a remote runner: keep retrying transient errors for this many seconds")
    r.set_defaults(func=cmd_gate_run)

    c = sub.add_parser("compare", help="paired evidence of two predictions files (B - A): bootstrap intervals, sign-flip test, "
                       "McNemar, the smallest detectable F1 difference")
    c.add_argument("a", type=Path, help="predictions.parquet or a gate folder")
    c.add_argument("b", type=Path, help="the other predictions file or gate folder (the difference is B - A)")
    c.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    c.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the sampled swaps")
    c.add_argument("--json", action="store_true", help="accepted for symmetry: the output is always JSON")
    c.set_defaults(func=cmd_compare)


def _registry_parsers(sub) -> None:
    from moola.cli import registry as rc
    r = sub.add_parser("registry", help="the production pointer and model versions (MOOLA_ARTIFACTS)")
    rs = r.add_subparsers(dest="registry_command", required=True)
    s = rs.add_parser("show", help="production and the registry's state")
    s.add_argument("--json", action="store_true", help="the whole registry.json")
    s.set_defaults(func=rc.cmd_show)
    h = rs.add_parser("history", help="every decision (kept-production ones too) and every rollback, oldest first")
    h.add_argument("--json", action="store_true", help="one JSON list")
    h.set_defaults(func=rc.cmd_history)
    rb = rs.add_parser("rollback", help="return production to an earlier version", description=rc.ROLLBACK_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    rb.add_argument("--to", help="vN of the production model (default: walk back one step, see above)")
    rb.set_defaults(func=rc.cmd_rollback)
    p = sub.add_parser("predict", help="inference with the production model or a model folder")
    p.add_argument("data", type=Path, help="windows to predict (Parquet; labels not needed)")
    p.add_argument("--model", default="production", help="'production' (the registry's) or a model folder")
    p.add_argument("--out", type=Path, required=True, help="predictions file to write (Parquet)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--assume-row-order", action="store_true", help="the file has no timestamps")
    p.set_defaults(func=rc.cmd_predict)


def _pods_api():
    from moola.pods.api import sdk_from_settings
    from moola.settings import load_settings
    s = load_settings()
    return sdk_from_settings(s), s.moola_artifacts


def cmd_pods(args: argparse.Namespace) -> int:
    from moola.pods.listing import moola_pods, table
    api, artifacts = _pods_api()
    pods = moola_pods(api, artifacts)
    print(json.dumps(pods, indent=2) if args.json else table(pods))
    return 0


def cmd_pods_clean(args: argparse.Namespace) -> int:
    from moola.pods.listing import clean, moola_pods, table
    api, artifacts = _pods_api()
    pods = moola_pods(api, artifacts)
    loose = [p for p in pods if not p["owned"]]
    if not loose:
        print("nothing to clean: every moola pod is owned by a live run" if pods else table(pods))
        return 0
    print(table(loose))
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"{len(loose)} pod(s) would be terminated: rerun with --yes (no terminal to ask on)")
        if input(f"terminate these {len(loose)} pod(s)? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing terminated")
            return 0
    done = clean(api, loose)
    for d in done:
        print(f"{d['pod_id']}: {d['ended']}")
    return 1 if any(d["ended"].startswith("failed") for d in done) else 0


def build_parser() -> argparse.ArgumentParser:
    from moola import __version__
    from moola.data.sample import SAMPLE_SEED
    p = argparse.ArgumentParser(prog="moola", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"moola {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="Gate 0: check data and split it (exit 0 valid, 2 invalid)")
    v.add_argument("data", type=Path, help="labelled windows (Parquet)")
    add_data_options(v)
    v.add_argument("--out", type=Path, help="folder for manifest.json")
    v.add_argument("--json", action="store_true", help="one JSON object: valid, problems, the split's sizes")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("sample-data", help="write deterministic synthetic OHLC windows")
    s.add_argument("dir", type=Path, help="folder for train.parquet and unlabeled.parquet")
    s.add_argument("--seed", type=int, default=SAMPLE_SEED, help=f"data seed ({SAMPLE_SEED})")
    s.add_argument("--n-labeled", type=int, default=98, help="labelled windows (two a trading day)")
    s.add_argument("--n-unlabeled", type=int, default=1000,
                   help="unlabelled pool size (1000 keeps the CPU demo quick; 11873 = original scale)")
    s.set_defaults(func=cmd_sample_data)

    _gate_parsers(sub)

    r = sub.add_parser("remote", help="the remote host (MOOLA_SSH_* settings)")
    rsub = r.add_subparsers(dest="remote_command", required=True)
    rc = rsub.add_parser("check", help="report the remote Python, GPU and core dependencies")
    rc.add_argument("--install", action="store_true", help="pip-install missing core dependencies")
    rc.set_defaults(func=cmd_remote_check)

    pd = sub.add_parser("pods", help="the RunPod pods moola created (RUNPOD_API_KEY), with status and cost")
    pd.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    pd.set_defaults(func=cmd_pods)
    pds = pd.add_subparsers(dest="pods_command")
    pc = pds.add_parser("clean", help="terminate the moola pods no live run owns (asks first)")
    pc.add_argument("--yes", action="store_true", help="do not ask")
    pc.set_defaults(func=cmd_pods_clean)

    _registry_parsers(sub)

    rp = sub.add_parser("report", help="a run's decision report (artifacts/runs/RUN/decision.md)")
    rp.add_argument("run", nargs="?", default="latest", help="the run's folder name under runs/ (default: the latest)")
    rp.add_argument("--json", action="store_true", help="the report's path and text as JSON")
    rp.set_defaults(func=cmd_report)
    verbose_everywhere(p)
    return p


def verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """-v/--verbose after any subcommand too (argparse only takes it before, where it was declared);
    SUPPRESS keeps a subcommand from resetting a -v given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                   help="debug logging")
                verbose_everywhere(child)


def cmd_report(args: argparse.Namespace) -> int:
    from moola.settings import registry_from_settings
    runs = registry_from_settings().root / "runs"
    if args.run == "latest":
        found = sorted(runs.glob("*/decision.md"))
        if not found:
            raise ConfigError(f"{runs}: no run with a decision report yet (run the gates flow first)")
        path = found[-1]
    else:
        if "/" in args.run or args.run in ("", ".", ".."):
            raise ConfigError(f"report {args.run!r}: give a run's folder name under {runs}")
        path = runs / args.run / "decision.md"
        if not path.is_file():
            known = sorted(p.parent.name for p in runs.glob("*/decision.md"))[-5:]
            raise ConfigError(f"{path}: no decision report (recent runs: {', '.join(known) or 'none'})")
    text = path.read_text()
    print(json.dumps({"run": path.parent.name, "path": str(path), "markdown": text}, indent=2) if args.json else text)
    return 0


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a CI cancel, `timeout`, a closed terminal): unwinds like Ctrl-C, so every
    ``finally`` runs and a pod this command leased is ended before the process exits."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_on_signals() -> dict:
    """SIGTERM and SIGHUP raise Stopped in the main thread (the default would kill the process with
    its pod left running). Called by the entry points that may lease a pod; returns the handlers
    it replaced (restore_signals puts them back)."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return {}

    def raise_stopped(signum, frame):
        for sig in (signal.SIGTERM, signal.SIGHUP):  # once: a second signal must not cut the release short
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signum)
    return {sig: signal.signal(sig, raise_stopped) for sig in (signal.SIGTERM, signal.SIGHUP)}


def restore_signals(saved: dict) -> None:
    import signal
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = stop_on_signals()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except MoolaError as exc:
        lines = getattr(exc, "problems", None) or str(exc).splitlines() or [type(exc).__name__]
        print("\n".join(error_lines(type(exc).__name__, lines)), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a disk, permission or path problem outside moola's own checks
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print("\n".join(error_lines(type(exc).__name__, [f"{where}{exc.strerror or exc} (rerun with -v for details)"])),
              file=sys.stderr)
        return EXIT_INFRA
    except Stopped as exc:
        print(f"stopped by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130
    finally:
        restore_signals(saved)


if __name__ == "__main__":
    sys.exit(main())

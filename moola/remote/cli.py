"""``moola gate run --runner local|ssh``: the same gate, run elsewhere, retried while transient."""

from __future__ import annotations

import argparse

from ..gates.result import GateResult, read_result
from .retry import call_with_retry
from .runner import GateCall, make_runner


def gate_call(args: argparse.Namespace) -> GateCall:
    opts = ["--val-size", str(args.val_size), "--folds", str(args.folds), "--bar-seconds", str(args.bar_seconds),
            "--preset", args.preset, "--device", args.device]
    if args.seed is not None:
        opts += ["--seed", str(args.seed)]
    if args.assume_row_order:
        opts.append("--assume-row-order")
    return GateCall(gate=args.gate, data=args.data, out=args.out, unlabeled=args.unlabeled,
                    baseline=args.baseline, encoder=args.encoder, options=tuple(opts), config=args.config)


def run_remote(kind: str, args: argparse.Namespace) -> GateResult:
    runner = make_runner(kind)
    call = gate_call(args)
    call_with_retry(lambda: runner.run_gate(call), retry_for=args.retry_for)
    return read_result(call.out)

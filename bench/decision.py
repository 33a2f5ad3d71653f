"""The decision's error rates under the rule as deployed (issue 24): production is one trained
model, re-scored only on the windows after its training end, as the `decide` flow does.

Per data seed (`moola sample-data`'s generator, `--n-labeled` windows): the first windows are
training data (one walk-forward fold, Gate 0's split and purge), the last `--eval` windows come
after it. Every model of the recipe is trained on the training part only, with its own seed:

- **null**: production = seed i, candidate = seed j (every ordered pair): the same recipe on the
  same data, nothing learned since. A ship is a false ship. Goal <= 2.5% per decision, with the
  Clopper-Pearson 95% upper bound <= 5%. Two seeds of one recipe are two fixed models, though, and
  one may really be better: `--holdout` later windows, never decided on, say whether the shipped
  candidate is ahead there too.
- **power**: production trained with 30% of its train labels flipped, candidate clean.

Each pair goes through the real `moola.decide.decision.decide` on the first 60 and on all `--eval`
windows after the training end (groups of a day's windows swapped and resampled together), so
power is reported beside the smallest detectable difference at both sizes. The pre-issue-24
rule (percentile bootstrap, Brier/PR-AUC on points) is printed beside it on the same pairs.

    .venv/bin/python bench/decision.py [--data-seeds 17 23 29 31] [--seeds 8] [--flipped 4]
                                       [--recipe minirocket|baseline]

One line per trained model, then the summary.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import beta

from moola.data.config import DataConfig
from moola.data.sample import write_sample
from moola.decide.decision import Evidence, Policy, decide
from moola.evaluation.metrics import classification_metrics
from moola.evaluation.stats import weighted_f1_rows
from moola.gates.classifier import train_classifier
from moola.gates.config import load_gate_config, resolve_budget
from moola.gates.context import prepare
from moola.gates.predictions import Scored
from moola.gates.result import GateResult, Metrics
from moola.models.minirocket import fit_minirocket

FLIP = 0.30
SIZES = (60, 180)


def train(ctx, seed: int, recipe: str, flip: float = 0.0) -> np.ndarray:
    """The recipe with ``seed`` trained on the fold's train windows (labels flipped at ``flip``);
    its probabilities on the fold's validation windows (every one after its training end)."""
    fold = ctx.last
    if flip:
        rng = np.random.default_rng(1000 + seed)
        y = np.array(fold.y_train)
        hit = rng.random(len(y)) < flip
        y[hit] = [ctx.classes[1 - ctx.classes.index(c)] for c in y[hit]]
        fold = replace(fold, y_train=y.tolist())
    if recipe == "baseline":
        cfg = ctx.cfg.model_copy(update={"seed": seed})
        return train_classifier(replace(ctx, cfg=cfg), fold, cfg.model, f"seed {seed}")[0].evaluation.proba
    return fit_minirocket(fold.X_train, fold.y_train, ctx.classes, seed, ctx.cfg.minirocket_kernels).predict_proba(fold.X_val)


def f1(y: np.ndarray, proba: np.ndarray) -> float:
    return float(weighted_f1_rows(y, proba.argmax(1), proba.shape[1], np.ones((1, len(y))))[0])


def headline(y: np.ndarray, proba: np.ndarray, classes) -> Metrics:
    """The metrics a gate would record for these predictions."""
    names = [classes[i] for i in y]
    return Metrics(**classification_metrics(names, [classes[i] for i in proba.argmax(1)], proba, list(classes)))


def decide_pair(y, ids, groups, prod: np.ndarray, cand: np.ndarray, classes, positive, policy: Policy) -> dict:
    results = {"validate": GateResult(gate="validate", gate_number=0, status="passed"),
               "baseline": GateResult(gate="baseline", gate_number=1, status="passed", degenerate=False,
                                      pooled=headline(y, cand, classes))}
    ev = Evidence({"baseline": Scored(ids, y, cand, classes, positive, groups)},
                  production=Scored(ids, y, prod, classes, positive, groups))
    d = decide(results, {"metrics": {"f1_weighted": f1(y, prod)}}, policy, ev)
    e = d.evidence["baseline vs production"]
    old = (e.p_not_above_margin <= policy.alpha / 2 and e.brier.diff <= policy.brier_tolerance
           and (e.pr_auc.diff is None or e.pr_auc.diff >= -policy.pr_auc_tolerance))
    return {"ship": d.action == "ship", "old": bool(old), "mde": e.detectable.f1_weighted.difference,
            "gain": e.f1_weighted.diff}


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    return 1.0 if k == n else float(beta.ppf(confidence, k + 1, n - k))


def line(name: str, xs: list[bool], bound: bool = False) -> str:
    k, n = sum(xs), len(xs)
    out = f"{name}: {k}/{n} = {k / max(1, n):.1%}"
    return out + (f" (95% upper bound {clopper_pearson_upper(k, n):.1%})" if bound else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[17, 23, 29, 31])
    ap.add_argument("--seeds", type=int, default=8, help="clean models per data seed (ordered pairs: null decisions)")
    ap.add_argument("--flipped", type=int, default=4, help="productions with flipped labels per data seed")
    ap.add_argument("--train", type=int, default=78, help="labelled windows before the evaluation windows")
    ap.add_argument("--eval", type=int, default=max(SIZES), help="windows after production's training end")
    ap.add_argument("--holdout", type=int, default=180, help="later windows still, never decided on: is the "
                    "candidate of a null ship really ahead there? (seeds of one recipe differ)")
    ap.add_argument("--recipe", choices=("minirocket", "baseline"), default="minirocket",
                    help="the recipe production and candidates are trained with (baseline: the BiLSTM, "
                    "~20 s a model on 2 CPU cores; minirocket: ~3 s)")
    args = ap.parse_args()
    policy = Policy()
    sizes = [s for s in SIZES if s <= args.eval]
    null = {s: [] for s in sizes}
    power = {s: [] for s in sizes}
    t0 = time.perf_counter()
    for ds in args.data_seeds:
        with tempfile.TemporaryDirectory() as d:
            write_sample(d, seed=ds, n_labeled=args.train + args.eval + args.holdout, n_unlabeled=0)
            cfg = resolve_budget(load_gate_config(), "cpu")
            ctx = prepare(Path(d) / "train.parquet", None, DataConfig(folds=1, val_size=args.eval + args.holdout), cfg,
                          torch.device("cpu"), Path(d) / "out")
            fold = ctx.last
            y = np.array([ctx.classes.index(c) for c in fold.y_val])
            ids = tuple(str(i) for i in fold.ids_val)
            group_of = dict(zip(map(str, ctx.report.labeled.ids), map(str, ctx.report.labeled.groups)))
            groups = tuple(group_of[i] for i in ids)
            clean = {s: train(ctx, s, args.recipe) for s in range(1, args.seeds + 1)}
            flipped = {s: train(ctx, s, args.recipe, FLIP) for s in range(101, 101 + args.flipped)}
            for s, p in {**clean, **flipped}.items():
                print(f"data {ds} seed {s} {'flipped' if s > 100 else 'clean'}: F1 {f1(y, p):.3f} on "
                      f"{len(y)} windows after {len(fold.y_train)} train", flush=True)
            held = slice(args.eval, args.eval + args.holdout)
            for n in sizes:
                cut = (y[:n], ids[:n], groups[:n])
                for i, j in itertools.permutations(clean, 2):
                    r = decide_pair(*cut, clean[i][:n], clean[j][:n], tuple(ctx.classes), ctx.positive, policy)
                    r["holdout_gain"] = f1(y[held], clean[j][held]) - f1(y[held], clean[i][held]) if args.holdout else None
                    null[n].append(r)
                for f, c in itertools.product(flipped, clean):
                    power[n].append(decide_pair(*cut, flipped[f][:n], clean[c][:n], tuple(ctx.classes), ctx.positive,
                                                policy))
    print(f"\n{args.recipe}, data seeds {args.data_seeds}, {args.train} train + {args.eval} later windows each, "
          f"{time.perf_counter() - t0:.0f} s")
    for n in sizes:
        mde = np.median([r["mde"] for r in null[n] + power[n]])
        gap = np.mean([r["gain"] for r in power[n]])
        print(f"{n} windows: " + line("null false ships (goal <= 2.5%, bound <= 5%)", [r["ship"] for r in null[n]], True)
              + "; " + line("old rule", [r["old"] for r in null[n]], True))
        shipped = [r["holdout_gain"] for r in null[n] if r["ship"] and r["holdout_gain"] is not None]
        if shipped:
            print(f"{n} windows: of the {len(shipped)} null ships, the candidate is ahead on the {args.holdout} later "
                  f"windows in {sum(g > 0 for g in shipped)} (mean F1 gain there {np.mean(shipped):+.3f}; all null "
                  f"pairs: {np.mean([abs(r['holdout_gain']) for r in null[n]]):.3f} mean absolute)")
        print(f"{n} windows: " + line(f"power, production with {FLIP:.0%} flipped labels", [r["ship"] for r in power[n]])
              + "; " + line("old rule", [r["old"] for r in power[n]])
              + f"; mean F1 gain {gap:+.3f}, median smallest detectable difference {mde:.3f}")


if __name__ == "__main__":
    main()

"""The decision's error rates, measured (issue 11): it gets the treatment a statistical test gets.

On `moola sample-data` (several data seeds), with the CPU budget and the `gates` flow's default
walk-forward folds, the baseline recipe is trained per fold with several model seeds, clean and
with 30% of its train labels flipped; each model's pooled validation predictions are then fed to
the real `moola.decision.decide` (the same function the flow calls):

- **null**: production = the recipe with seed i, candidate = the same recipe with seed j on the
  same data (every ordered pair i != j). A ship is a false ship. Goal <= 5%. Also measured: the
  best of three candidates (three other seeds) against production, as the flow offers three,
  and today's (the old) rule on the same models, which compared point F1 / PR-AUC / Brier of
  the last fold's 20 windows.
- **power**: production trained with 30% of its train labels flipped, candidate on clean labels,
  both scored on the same clean windows: the ship rate. Goal >= 80%.
- **control**: a control of the baseline's own skill (the same recipe, another seed: within
  noise of the baseline by construction) against the best candidate: the share of decisions that
  halt on `investigate`. Goal <= 10%. The real MiniRocket's halt rate is printed beside it.

    .venv/bin/python bench/decision.py [--data-seeds 17 23] [--seeds 7] [--flipped 5]

Prints one line per trained model, then the figures; the last lines are the summary.
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

from moola.config import load_gate_config, resolve_budget
from moola.data.sample import write_sample
from moola.data.validate import DataConfig
from moola.decision import DECISION_FOLDS, Evidence, Policy, Scored, decide
from moola.gates.classifier import train_classifier
from moola.gates.context import prepare
from moola.models.minirocket import fit_minirocket

FLIP = 0.30


def pooled(ctx, seed: int, flip: float = 0.0, recipe: str = "baseline") -> dict:
    """The ``recipe`` (the baseline gate's, or MiniRocket's) with ``seed`` trained on every fold
    (train labels flipped at rate ``flip``), scored on each fold's clean validation windows."""
    from moola.gates.context import evaluate
    ctx = replace(ctx, cfg=ctx.cfg.model_copy(update={"seed": seed}))
    probas, last = [], None
    rng = np.random.default_rng(1000 + seed)
    for fold in ctx.folds:
        if flip:
            y = np.array(fold.y_train)
            hit = rng.random(len(y)) < flip
            y[hit] = [ctx.classes[1 - ctx.classes.index(c)] for c in y[hit]]
            fold = replace(fold, y_train=y.tolist())
        if recipe == "baseline":
            last = train_classifier(ctx, fold, ctx.cfg.model, f"seed {seed}")[0].evaluation
        else:
            model = fit_minirocket(fold.X_train, fold.y_train, ctx.classes, seed, ctx.cfg.minirocket_kernels)
            last = evaluate(ctx, fold, model.predict_proba(fold.X_val))
        probas.append(last.proba)
    return {"proba": np.concatenate(probas), "last": last}


def scored(ctx, proba: np.ndarray) -> Scored:
    ids = tuple(str(i) for f in ctx.folds for i in f.ids_val)
    y = np.array([ctx.classes.index(c) for f in ctx.folds for c in f.y_val])
    return Scored(ids, y, proba, tuple(ctx.classes), ctx.positive)


def result_of(ctx, model: dict) -> dict:
    """What decide() reads of a gate result: status, degeneracy (last fold), pooled F1."""
    from moola.stats import weighted_f1_rows
    s = scored(ctx, model["proba"])
    f1 = float(weighted_f1_rows(s.y, s.proba.argmax(1), len(s.classes), np.ones((1, len(s.y))))[0])
    return {"status": "passed", "degenerate": model["last"].degenerate, "pooled": {"f1_weighted": f1},
            "metrics": model["last"].metrics}


def old_rule(cand: dict, prod: dict) -> bool:
    """The rule before issue 11: point F1 above production's, PR-AUC not lower, Brier not higher,
    on the numbers each recorded on its last fold (20 windows), tolerances 0."""
    c, p = cand["last"].metrics, prod["last"].metrics
    return (c["f1_weighted"] > p["f1_weighted"] and c["pr_auc"] >= p["pr_auc"] and c["brier"] <= p["brier"])


def ships(ctx, prod: dict, cands: dict[str, dict], policy: Policy) -> bool:
    results = {"validate": {"status": "passed"}, **{g: result_of(ctx, m) for g, m in cands.items()}}
    ev = Evidence({g: scored(ctx, m["proba"]) for g, m in cands.items()}, production=scored(ctx, prod["proba"]))
    return decide(results, {"metrics": prod["last"].metrics}, policy, ev).action == "ship"


def halts(ctx, cand: dict, control_proba: np.ndarray, policy: Policy) -> bool:
    results = {"validate": {"status": "passed"}, "baseline": result_of(ctx, cand),
               "minirocket": result_of(ctx, {"proba": control_proba, "last": cand["last"]})}
    ev = Evidence({"baseline": scored(ctx, cand["proba"]), "minirocket": scored(ctx, control_proba)})
    return decide(results, None, policy, ev).action == "investigate"


def rate(xs: list[bool]) -> str:
    return f"{sum(xs)}/{len(xs)} = {sum(xs) / max(1, len(xs)):.1%}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[17, 23])
    ap.add_argument("--seeds", type=int, default=7, help="clean model seeds per data seed")
    ap.add_argument("--flipped", type=int, default=5, help="models with flipped labels per data seed")
    ap.add_argument("--folds", type=int, default=DECISION_FOLDS)
    ap.add_argument("--n-labeled", type=int, default=98, help="labelled windows per data seed (the seed's 98)")
    ap.add_argument("--epochs", type=int, help="override the CPU budget (a quick smoke run)")
    ap.add_argument("--recipe", choices=("baseline", "minirocket"), default="baseline",
                    help="the model whose seeds and flipped labels make the scenarios (the control is "
                    "always MiniRocket)")
    args = ap.parse_args()
    policy = Policy()
    null1, null3, old1, power, old_power, ctrl, ctrl_mr = [], [], [], [], [], [], []
    f1_clean, f1_flipped = [], []
    t0 = time.perf_counter()
    for ds in args.data_seeds:
        with tempfile.TemporaryDirectory() as d:
            write_sample(d, seed=ds, n_labeled=args.n_labeled, n_unlabeled=0)
            cfg = resolve_budget(load_gate_config(), "cpu")
            if args.epochs:
                cfg = cfg.model_copy(update={"fit": cfg.fit.model_copy(update={"epochs": args.epochs})})
            ctx = prepare(Path(d) / "train.parquet", None, DataConfig(folds=args.folds), cfg,
                          torch.device("cpu"), Path(d) / "out")
            clean, flipped = {}, {}
            for s in range(1, args.seeds + 1):
                clean[s] = pooled(ctx, s, recipe=args.recipe)
                print(f"data {ds} seed {s} clean: pooled F1 {result_of(ctx, clean[s])['pooled']['f1_weighted']:.3f}",
                      flush=True)
            for s in range(101, 101 + args.flipped):
                flipped[s] = pooled(ctx, s, FLIP, args.recipe)
                print(f"data {ds} seed {s} flipped {FLIP:.0%}: pooled F1 "
                      f"{result_of(ctx, flipped[s])['pooled']['f1_weighted']:.3f}", flush=True)
            mr = np.concatenate([fit_minirocket(f.X_train, f.y_train, ctx.classes, 17, cfg.minirocket_kernels)
                                 .predict_proba(f.X_val) for f in ctx.folds])
            print(f"data {ds} MiniRocket: pooled F1 "
                  f"{result_of(ctx, {'proba': mr, 'last': clean[1]['last']})['pooled']['f1_weighted']:.3f}", flush=True)
        f1_clean += [result_of(ctx, m)["pooled"]["f1_weighted"] for m in clean.values()]
        f1_flipped += [result_of(ctx, m)["pooled"]["f1_weighted"] for m in flipped.values()]
        for i, j in itertools.permutations(clean, 2):
            null1.append(ships(ctx, clean[i], {"baseline": clean[j]}, policy))
            old1.append(old_rule(clean[j], clean[i]))
            ctrl.append(halts(ctx, clean[j], clean[i]["proba"], policy))
        for i in clean:
            others = [s for s in clean if s != i]
            for trio in itertools.combinations(others, 3):
                null3.append(ships(ctx, clean[i], dict(zip(("baseline", "transfer", "augment"),
                                                           (clean[s] for s in trio))), policy))
        for f, c in itertools.product(flipped, clean):
            power.append(ships(ctx, flipped[f], {"baseline": clean[c]}, policy))
            old_power.append(old_rule(clean[c], flipped[f]))
        ctrl_mr += [halts(ctx, clean[s], mr, policy) for s in clean]
    n_models = len(args.data_seeds) * (args.seeds + args.flipped)
    print(f"\n{n_models} {args.recipe} models, data seeds {args.data_seeds}, {args.n_labeled} labelled windows, "
          f"{args.folds} folds ({sum(len(f.y_val) for f in ctx.folds)} pooled windows), "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"pooled F1 clean {np.mean(f1_clean):.3f} (sd {np.std(f1_clean):.3f}, {len(f1_clean)} models), "
          f"{FLIP:.0%} flipped {np.mean(f1_flipped):.3f} (sd {np.std(f1_flipped):.3f}, {len(f1_flipped)} models): "
          f"the gap power has to find is {np.mean(f1_clean) - np.mean(f1_flipped):+.3f}")
    print(f"null false-ship, one candidate (goal <= 5%): {rate(null1)}; old rule on the same pairs: {rate(old1)}")
    print(f"null false-ship, best of three candidates (Holm): {rate(null3)}")
    print(f"power with {FLIP:.0%} of production's train labels flipped (goal >= 80%): {rate(power)}; "
          f"old rule: {rate(old_power)}")
    print(f"control within noise halts on investigate (goal <= 10%): {rate(ctrl)}; "
          f"real MiniRocket halts: {rate(ctrl_mr)}")


if __name__ == "__main__":
    main()

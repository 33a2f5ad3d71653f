"""Gate 2: the MiniRocket control (sktime MiniRocket + RidgeClassifierCV).

With --baseline it is compared with the baseline on the same pooled validation windows (paired
bootstrap); when its F1 lead has a 95% CI above 0 the gate fails with "investigate labels and
splits" (verdicts.control_verdict)."""

from __future__ import annotations

import time

from moola.gates.context import (
    Context,
    against_baseline,
    baseline_info,
    evaluate,
    gate_result,
    pooled_metrics,
    write_predictions,
)
from moola.gates.result import GateResult
from moola.gates.verdicts import comparison, control_verdict, degenerate_reasons
from moola.models.files import save_pickle
from moola.models.minirocket import fit_minirocket

PROBABILITIES = "softmax of the ridge scores at one temperature fitted to leave-one-out scores on train"


def gate_minirocket(ctx: Context, folders: dict) -> GateResult:
    baseline_f1, info = baseline_info(folders.get("baseline"))
    evals, fit_s, model = [], 0.0, None
    for fold in ctx.folds:
        t0 = time.perf_counter()
        model = fit_minirocket(fold.X_train, fold.y_train, ctx.classes, ctx.cfg.seed, ctx.cfg.minirocket_kernels)
        fit_s += time.perf_counter() - t0
        evals.append(evaluate(ctx, fold, model.predict_proba(fold.X_val)))
    ev = evals[-1]
    sha = save_pickle(model, ctx.out / "minirocket.pkl")
    write_predictions(ctx, evals)
    reasons = degenerate_reasons(ev.reasons)
    cmp = comparison(pooled_metrics(ctx, evals).f1_weighted, baseline_f1, info)
    if cmp is not None:
        evidence = against_baseline(ctx, folders["baseline"], evals)
        verdict, why = control_verdict(evidence)
        cmp = cmp.model_copy(update={"evidence": evidence, "verdict": verdict})
        reasons += [why] if why else []
    return gate_result(ctx, "minirocket", ev, evals, reasons, comparison=cmp, model_files={"minirocket.pkl": sha},
                       fit_seconds=fit_s, details={"alpha": float(model.ridge.alpha_), "temperature": model.temperature,
                                                   "probabilities": PROBABILITIES})

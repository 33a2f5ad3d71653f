"""Gates 1-5 as functions of a prepared Context: each returns a GateResult (not yet written)."""

from __future__ import annotations

import logging
import time
from pathlib import Path


from ..augment import Augmenter
from ..errors import ConfigError
from ..modelfile import load_weights, save_pickle, verify_folder
from ..models.minirocket import fit_minirocket
from . import GATES
from .classifier import fit_details, save_classifier, train_classifier
from .common import Context, data_summary, evaluate, fold_summaries, write_predictions
from .result import GateResult, Metrics, read_result

log = logging.getLogger("moola.gates")


def _result(ctx: Context, gate: str, ev, evals, reasons: list[str], **kw) -> GateResult:
    status = "failed" if reasons else "passed"
    return GateResult(gate=gate, gate_number=GATES[gate], status=status, reasons=reasons,
                      metrics=Metrics(**ev.metrics) if ev else None,
                      majority_baseline=Metrics(**ev.majority) if ev else None,
                      degenerate=ev.degenerate if ev else None, folds=fold_summaries(ctx, evals) if ev else None,
                      config=ctx.cfg.model_dump(), data_manifest_sha256=ctx.manifest_sha256,
                      data=data_summary(ctx), **kw)


def _baseline_f1(baseline_dir: Path | None) -> tuple[float | None, dict | None]:
    if baseline_dir is None:
        return None, None
    verify_folder(baseline_dir)
    res = read_result(baseline_dir)
    if res.metrics is None:
        raise ConfigError(f"--baseline {baseline_dir}: that result has no metrics")
    return res.metrics.f1_weighted, {"gate": res.gate, "degenerate": res.degenerate, "status": res.status}


def _compare(f1: float, baseline_f1: float | None, info: dict | None) -> dict | None:
    if baseline_f1 is None:
        return None
    return {"baseline_f1": baseline_f1, "f1": f1, "delta": f1 - baseline_f1, "baseline": info}


def gate_baseline(ctx: Context, opts: dict) -> GateResult:
    return _classifier_gate(ctx, "baseline", ctx.cfg.model, opts)


def gate_augment(ctx: Context, opts: dict) -> GateResult:
    return _classifier_gate(ctx, "augment", ctx.cfg.model, opts, augment=True)


def gate_transfer(ctx: Context, opts: dict) -> GateResult:
    enc_dir = opts.get("encoder")
    if enc_dir is None:
        raise ConfigError("gate transfer needs --encoder DIR (the output folder of gate pretrain)")
    enc_dir = Path(enc_dir)
    if (enc_dir / "MANIFEST.sha256").is_file():
        verify_folder(enc_dir)
    import json
    enc_cfg = json.loads((enc_dir / "encoder.json").read_text())
    state = load_weights(enc_dir / "encoder.safetensors")
    # layer-matched: the classifier takes the encoder's depth and width
    model_cfg = ctx.cfg.model.model_copy(update={"num_layers": enc_cfg["num_layers"], "hidden": enc_cfg["hidden"]})
    return _classifier_gate(ctx, "transfer", model_cfg, opts, encoder=state)


def _classifier_gate(ctx: Context, gate: str, model_cfg, opts: dict, encoder=None, augment=False) -> GateResult:
    baseline_f1, info = _baseline_f1(opts.get("baseline"))
    evals, fit_s, details, files = [], 0.0, {}, {}
    trained = None
    for fold in ctx.folds:
        aug = Augmenter(ctx.cfg.augment) if augment else None
        trained, proof = train_classifier(ctx, fold, model_cfg, f"{gate}[fold {fold.index + 1}]", encoder, aug)
        if proof is not None:
            details["load_proof"] = proof.to_dict()
        if trained is None:
            return _result(ctx, gate, None, [], ["encoder load proof failed: " + "; ".join(proof.reasons())],
                           details=details)
        evals.append(trained.evaluation)
        fit_s += trained.fit.seconds
        if aug is not None:
            details["augmentation"] = aug.report()
    ev = evals[-1]
    details["fit"] = fit_details(trained.fit)
    details["model"] = model_cfg.model_dump()
    files = save_classifier(ctx, trained, model_cfg)
    write_predictions(ctx, ev)
    reasons = [f"degenerate: {r}" for r in ev.reasons]
    return _result(ctx, gate, ev, evals, reasons, details=details, model_files=files, fit_seconds=fit_s,
                   comparison=_compare(ev.metrics["f1_weighted"], baseline_f1, info))


def gate_minirocket(ctx: Context, opts: dict) -> GateResult:
    baseline_f1, info = _baseline_f1(opts.get("baseline"))
    evals, fit_s, model = [], 0.0, None
    for fold in ctx.folds:
        t0 = time.perf_counter()
        model = fit_minirocket(fold.X_train, fold.y_train, ctx.classes, ctx.cfg.seed, ctx.cfg.minirocket_kernels)
        fit_s += time.perf_counter() - t0
        evals.append(evaluate(ctx, fold, model.predict_proba(fold.X_val)))
    ev = evals[-1]
    sha = save_pickle(model, ctx.out / "minirocket.pkl")
    write_predictions(ctx, ev)
    reasons = [f"degenerate: {r}" for r in ev.reasons]
    comparison = _compare(ev.metrics["f1_weighted"], baseline_f1, info)
    if comparison is not None:
        wins = ev.metrics["f1_weighted"] >= baseline_f1
        comparison["verdict"] = "control_wins" if wins else "baseline_wins"
        if wins:
            reasons.append(f"the MiniRocket control (F1 {ev.metrics['f1_weighted']:.3f}) matches or beats the "
                           f"baseline (F1 {baseline_f1:.3f}): investigate labels and splits")
    return _result(ctx, "minirocket", ev, evals, reasons, comparison=comparison, model_files={"minirocket.pkl": sha},
                   fit_seconds=fit_s, details={"alpha": float(model.ridge.alpha_),
                                               "probabilities": "Platt scaling of leave-one-out ridge scores on train"})


def gate_pretrain(ctx: Context, opts: dict) -> GateResult:
    from .pretrain import run_pretrain
    return run_pretrain(ctx, opts, _result)


GATE_FUNCTIONS = {"baseline": gate_baseline, "minirocket": gate_minirocket, "pretrain": gate_pretrain,
           "transfer": gate_transfer, "augment": gate_augment}

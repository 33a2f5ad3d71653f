"""Training and evaluating EnhancedSimpleLSTM for gates 1, 4 and 5 (one recipe, three uses):
``classifier_gate`` is the gate they share; baseline.py, transfer.py and augment.py configure it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from moola.core.files import sha256_file
from moola.gates.context import (
    Context,
    Evaluation,
    FoldData,
    baseline_info,
    evaluate,
    gate_result,
    pooled_metrics,
    write_predictions,
)
from moola.gates.result import GateResult
from moola.gates.verdicts import comparison, degenerate_reasons, load_proof_reasons
from moola.models.files import save_torch
from moola.models.lstm import EnhancedSimpleLSTM, ModelConfig, auto_stride
from moola.models.transfer import EncoderMatchReport, load_encoder
from moola.train.augment import Augmenter
from moola.train.fit import FitResult, fit, predict_proba


@dataclass
class Trained:
    model: EnhancedSimpleLSTM
    fit: FitResult
    evaluation: Evaluation


def class_weights(y: np.ndarray, k: int) -> torch.Tensor:
    counts = np.bincount(y, minlength=k).astype(float)
    w = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def train_classifier(ctx: Context, fold: FoldData, model_cfg: ModelConfig, name: str,
                     encoder: dict[str, torch.Tensor] | None = None,
                     augmenter: Augmenter | None = None) -> tuple[Trained | None, EncoderMatchReport | None]:
    """Build, optionally load an encoder into, train and evaluate one classifier.

    Returns (None, report) when the encoder load proof fails: nothing is trained then.
    """
    torch.manual_seed(ctx.cfg.seed)
    k = len(ctx.classes)
    model = EnhancedSimpleLSTM(ctx.n_channels, k, model_cfg)
    report = None
    plan = ctx.cfg.fit
    on_epoch_start = None
    if encoder is not None:
        report = load_encoder(model, model.encoder_parameter_names(), encoder, ctx.cfg.transfer.min_match_ratio)
        if not report.passed:
            return None, report
        freeze_epochs = int(round(ctx.cfg.transfer.freeze_frac * plan.epochs))

        def on_epoch_start(epoch: int, m: EnhancedSimpleLSTM) -> None:
            # freeze the pretrained encoder first so the fresh head does not wreck it, then fine-tune
            for p in m.lstm.parameters():
                p.requires_grad_(epoch > freeze_epochs)

    y_idx = np.array([ctx.classes.index(c) for c in fold.y_train])
    weights = class_weights(y_idx, k) if ctx.cfg.fit.class_weighted else None

    def loss_fn(m, xb, yb):
        w = None if weights is None else weights.to(xb.device)
        return F.cross_entropy(m(xb).float(), yb, weight=w, label_smoothing=ctx.cfg.fit.label_smoothing)

    result = fit(model, torch.from_numpy(fold.X_train), torch.from_numpy(y_idx), loss_fn, plan,
                 ctx.cfg.seed, ctx.device, augment=augmenter, on_epoch_start=on_epoch_start, name=name)
    for p in model.parameters():
        p.requires_grad_(True)
    proba = predict_proba(model, torch.from_numpy(fold.X_val), ctx.device).numpy().astype(np.float64)
    return Trained(model, result, evaluate(ctx, fold, proba)), report


def save_classifier(ctx: Context, trained: Trained, model_cfg: ModelConfig, stem: str = "model") -> dict[str, str]:
    """Weights as safetensors plus the config needed to rebuild and feed the model."""
    cfg = {"kind": "EnhancedSimpleLSTM", "model": model_cfg.model_dump(), "n_channels": ctx.n_channels,
           "classes": ctx.classes, "normalizer": ctx.last.normalizer.to_dict(),
           "T": ctx.T, "seed": ctx.cfg.seed}
    path = save_torch(trained.model, ctx.out, stem, cfg)
    return {path.name: sha256_file(path)}


def fit_details(r: FitResult) -> dict:
    return {"epochs_run": r.epochs_run, "best_epoch": r.best_epoch, "steps": r.steps,
            "stopped_early": r.stopped_early, "amp": r.amp, "device": r.device,
            "inner_val_size": r.inner_val_size,
            "final_train_loss": r.history[-1]["train_loss"] if r.history else None,
            "first_train_loss": r.history[0]["train_loss"] if r.history else None}


def classifier_gate(ctx: Context, gate: str, model_cfg: ModelConfig, baseline: Path | None = None,
                    encoder: dict[str, torch.Tensor] | None = None, augment: bool = False) -> GateResult:
    """Train and evaluate the classifier on every fold; the last fold's model is the gate's model."""
    baseline_f1, info = baseline_info(baseline)
    model_cfg = model_cfg.model_copy(update={"stride": auto_stride(ctx.T, model_cfg.stride)})
    evals, fit_s, details = [], 0.0, {}
    trained = None
    for fold in ctx.folds:
        aug = Augmenter(ctx.cfg.augment) if augment else None
        trained, proof = train_classifier(ctx, fold, model_cfg, f"{gate}[fold {fold.index + 1}]", encoder, aug)
        if proof is not None:
            details["load_proof"] = proof.to_dict()
        if trained is None:
            return gate_result(ctx, gate, None, [], load_proof_reasons(proof.reasons()), details=details)
        evals.append(trained.evaluation)
        fit_s += trained.fit.seconds
        if aug is not None:
            details["augmentation"] = aug.report()
    ev = evals[-1]
    details["fit"] = fit_details(trained.fit)
    details["model"] = model_cfg.model_dump()
    files = save_classifier(ctx, trained, model_cfg)
    write_predictions(ctx, evals)
    return gate_result(ctx, gate, ev, evals, degenerate_reasons(ev.reasons), details=details, model_files=files,
                       fit_seconds=fit_s, comparison=comparison(pooled_metrics(ctx, evals).f1_weighted, baseline_f1,
                                                                info))

"""Gate 3: pretrain the masked autoencoder on unlabelled windows that end before validation,
then a linear probe: logistic regression fit on train encodings, scored on validation."""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from moola.core.errors import ConfigError
from moola.core.files import sha256_file
from moola.gates.classifier import fit_details
from moola.gates.context import Context, evaluate, gate_result, write_predictions
from moola.gates.result import GateResult
from moola.gates.verdicts import degenerate_reasons
from moola.models.autoencoder import MaskedAutoencoder, masked_mse, patch_mask
from moola.models.files import save_torch
from moola.models.lstm import auto_stride, lstm_input
from moola.train.fit import FitConfig, fit

log = logging.getLogger("moola.gates.pretrain")


def steps(X: np.ndarray, stride: int, gain: float) -> torch.Tensor:
    return lstm_input(torch.from_numpy(X), stride, gain).contiguous()


@torch.no_grad()
def encode(model: MaskedAutoencoder, X: np.ndarray, stride: int, gain: float, device: torch.device,
           batch: int = 512) -> np.ndarray:
    """(N, T, C) -> (N, 2H): encoder outputs averaged over time."""
    model.eval().to(device)
    out = [model.encode(steps(X[i: i + batch], stride, gain).to(device)).float().mean(dim=1).cpu()
           for i in range(0, len(X), batch)]
    return torch.cat(out).numpy()


def gate_pretrain(ctx: Context, folders: dict) -> GateResult:
    rep, pcfg, seed = ctx.report, ctx.cfg.pretrain, ctx.cfg.seed
    if rep.unlabeled is None:
        raise ConfigError("gate pretrain needs --unlabeled FILE (unlabelled windows for pretraining)")
    un = rep.unlabeled
    keep = np.flatnonzero(rep.pretrain_keep)
    keep = keep[np.argsort(un.starts[keep], kind="stable")]
    if pcfg.max_windows_cpu and len(keep) > pcfg.max_windows_cpu:
        keep = keep[-pcfg.max_windows_cpu:]  # the most recent windows, closest to the labelled period
    Xu = ctx.last.normalizer.transform(un.X[keep])
    # the encoder sees the steps the transfer classifier will see
    stride = pcfg.stride or auto_stride(ctx.T, ctx.cfg.model.stride)
    gain = ctx.cfg.model.input_gain
    log.info("pretraining on %d unlabelled windows (%d excluded for reaching into validation)",
             len(keep), int((~rep.pretrain_keep).sum()))

    torch.manual_seed(seed)
    model = MaskedAutoencoder(ctx.n_channels, pcfg)
    train_gen = torch.Generator().manual_seed(seed)

    def loss_fn(m, xb, _):
        g = train_gen if m.training else torch.Generator().manual_seed(seed)  # fixed masks for inner val
        mask = patch_mask(len(xb), xb.shape[1], pcfg.mask_ratio, pcfg.patch, g, xb.device)
        return masked_mse(m(xb, mask), xb, mask)

    # the encoder's training: the one loop with Gate 3's settings (no class weights, no averaging)
    plan = FitConfig(epochs=pcfg.epochs, batch_size=pcfg.batch_size, lr=pcfg.lr, weight_decay=pcfg.weight_decay,
                     warmup_frac=pcfg.warmup_frac, schedule=pcfg.schedule, clip=pcfg.clip, patience=pcfg.patience,
                     inner_val_frac=pcfg.inner_val_frac if len(Xu) >= 20 else 0.0,
                     min_epochs_frac=pcfg.min_epochs_frac, amp=pcfg.amp)
    res = fit(model, steps(Xu, stride, gain), None, loss_fn, plan, seed, ctx.device, name="pretrain")

    evals = []
    for fold in ctx.folds:
        z_train, z_val = (encode(model, fold.X_train, stride, gain, ctx.device),
                          encode(model, fold.X_val, stride, gain, ctx.device))
        scaler = StandardScaler().fit(z_train)
        probe = LogisticRegression(max_iter=2000, class_weight="balanced").fit(
            scaler.transform(z_train), [ctx.classes.index(c) for c in fold.y_train])
        p = probe.predict_proba(scaler.transform(z_val))
        proba = np.zeros((len(z_val), len(ctx.classes)))
        proba[:, probe.classes_] = p
        evals.append(evaluate(ctx, fold, proba))
    ev = evals[-1]
    write_predictions(ctx, evals)

    state = {f"lstm.{k}": v for k, v in model.lstm.state_dict().items()}
    enc_cfg = {"kind": "BiLSTMEncoder", "hidden": pcfg.hidden, "num_layers": pcfg.num_layers, "stride": stride,
               "input_gain": gain,
               "n_channels": ctx.n_channels, "normalizer": ctx.last.normalizer.to_dict(),
               "pretrain": pcfg.model_dump(), "windows": int(len(keep)), "seed": seed}
    path = save_torch(model, ctx.out, "encoder", enc_cfg, state=state)
    save_torch(model, ctx.out, "autoencoder", enc_cfg)
    reasons = degenerate_reasons(ev.reasons, "linear probe is degenerate")
    details = {"fit": fit_details(res), "windows": int(len(keep)),
               "excluded_windows": int((~rep.pretrain_keep).sum()),
               "best_inner_val_mse": min((h.get("val_loss", np.inf) for h in res.history), default=None),
               "probe": "logistic regression on time-averaged encoder outputs, fit on train, scored on validation"}
    return gate_result(ctx, "pretrain", ev, evals, reasons, details=details,
                       model_files={path.name: sha256_file(path)}, fit_seconds=res.seconds)

"""The one training loop for every torch model in moola.

``fit`` knows nothing about LSTMs or autoencoders: a model, a tensor of inputs, optional
targets, and a ``loss_fn(model, xb, yb) -> scalar``. It owns the device, bf16 autocast,
AdamW with warm-up + cosine decay, gradient clipping, optional early stopping on an inner
*forward-chaining* split (the latest share of train; never random or stratified; off by
default), optional averaging of the last epochs' weights, seeding, and per-epoch progress in
the log. Train inputs are expected in time order.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from moola.core.errors import ConfigError
from moola.models.lstm import CPU_HIDDEN


class FitConfig(BaseModel):
    """The one training loop's settings (classifiers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int | None = Field(None, ge=1, description="None: 60 on CPU, 150 on GPU")
    batch_size: int | None = Field(None, ge=1, description="None: 16 on CPU and GPU")
    lr: float | None = Field(None, gt=0, description="None: default_lr(hidden), 5e-3 at 32 units, 2e-3 wider")
    weight_decay: float = Field(1e-4, ge=0)
    warmup_frac: float = Field(0.1, ge=0, lt=1, description="share of steps with linear warm-up")
    schedule: Literal["cosine", "constant"] = "cosine"
    clip: float | None = Field(1.0, gt=0, description="gradient-norm clipping")
    patience: int = Field(20, ge=1, description="epochs without inner-val improvement before stopping")
    min_epochs_frac: float = Field(0.5, ge=0, le=1, description=(
        "share of epochs always trained; the best inner-val epoch is picked after it (an inner "
        "split of ~12 windows is too noisy to trust in the first epochs)"))
    inner_val_frac: float = Field(0.0, ge=0, lt=0.5, description=(
        "latest share of train held out for early stopping (0: none, train on every window for the full "
        "budget). Off by default: on 40-80 windows the held-out 6-12 are too few to pick an epoch by, "
        "and training on them scored higher (bench/RESULTS.md, 'Baseline recipe')"))
    amp: Literal["auto", "on", "off"] = Field("auto", description="auto: bf16 autocast on CUDA at batch >= 128")
    class_weighted: bool = True
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    average_last_frac: float = Field(0.0, ge=0, le=1, description=(
        "share of the last epochs whose end-of-epoch weights are averaged into the final model "
        "(stochastic weight averaging; 0: the last epoch's weights). Used when there is no inner split"))


def default_lr(hidden: int) -> float:
    """Measured on GunPoint (bench/RESULTS.md, "Baseline recipe"): 32 units learn at 5e-3; 128
    units collapse to the majority class there at 5e-3 (2 seeds of 3) and reach 0.998 at 2e-3."""
    return 5e-3 if hidden <= CPU_HIDDEN else 2e-3

log = logging.getLogger("moola.train.fit")

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor | None], torch.Tensor]
AugmentFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here (use --device auto or cpu)")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ConfigError(f"--device: expected auto, cpu or cuda, found {requested!r}")
    return torch.device(requested)


def use_amp(setting: str, device: torch.device, batch_size: int) -> bool:
    """bf16 autocast only on CUDA; 'auto' only at batch >= 128 (at tiny batch it does not pay)."""
    if device.type != "cuda":
        return False
    return setting == "on" or (setting == "auto" and batch_size >= 128)


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int
    steps: int
    seconds: float
    stopped_early: bool
    amp: bool
    device: str
    history: list[dict] = field(default_factory=list)
    inner_val_size: int = 0


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def fit(model: nn.Module, X: torch.Tensor, y: torch.Tensor | None, loss_fn: LossFn, plan: FitConfig, seed: int,
        device: torch.device, augment: AugmentFn | None = None,
        on_epoch_start: Callable[[int, nn.Module], None] | None = None,
        name: str = "fit") -> FitResult:
    """Train ``model`` in place; on return it holds the best weights seen on the inner split.
    ``plan``: a FitConfig whose device-dependent budget (epochs, batch size, lr) is resolved
    (moola.gates.config.resolve_budget)."""
    if None in (plan.epochs, plan.batch_size, plan.lr):
        raise ValueError(f"{name}: epochs, batch_size and lr must be resolved before fit ({plan})")
    gen = seed_everything(seed)
    n = len(X)
    n_inner = int(round(n * plan.inner_val_frac)) if plan.inner_val_frac > 0 else 0
    n_inner = min(n_inner, n - 1)
    Xtr, Xin = X[: n - n_inner], X[n - n_inner:]
    ytr = yin = None
    if y is not None:
        ytr, yin = y[: n - n_inner], y[n - n_inner:]
    model.to(device)
    Xtr_d = Xtr.to(device)
    ytr_d = None if ytr is None else ytr.to(device)
    amp = use_amp(plan.amp, device, plan.batch_size)
    opt = torch.optim.AdamW([p for p in model.parameters()], lr=plan.lr, weight_decay=plan.weight_decay)
    steps_per_epoch = math.ceil(len(Xtr) / plan.batch_size)
    total = steps_per_epoch * plan.epochs
    warmup = int(plan.warmup_frac * total)
    best = (math.inf, 0, None)
    history: list[dict] = []
    step = 0
    stale = 0
    t0 = time.perf_counter()
    epoch = 0
    min_epochs = int(plan.min_epochs_frac * plan.epochs)
    # without an inner split to pick an epoch by, the last n_last epochs' weights may be averaged
    n_last = 0 if n_inner else int(round(plan.average_last_frac * plan.epochs))
    avg, n_avg = None, 0
    for epoch in range(1, plan.epochs + 1):
        if on_epoch_start:
            on_epoch_start(epoch, model)
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        total_loss = 0.0
        for i in range(0, len(Xtr), plan.batch_size):
            idx = perm[i: i + plan.batch_size]
            xb = Xtr[idx] if augment is None else augment(Xtr[idx], gen)
            xb = xb.to(device, non_blocking=True) if augment is not None else Xtr_d[idx.to(device)]
            yb = None if ytr_d is None else ytr_d[idx.to(device)]
            for g in opt.param_groups:
                g["lr"] = plan.lr * _lr_factor(step, total, warmup, plan.schedule)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if plan.clip:
                nn.utils.clip_grad_norm_(model.parameters(), plan.clip)
            opt.step()
            step += 1
            total_loss += float(loss.detach()) * len(idx)
        record = {"epoch": epoch, "train_loss": total_loss / len(Xtr)}
        if n_inner:
            record["val_loss"] = evaluate_loss(model, Xin, yin, loss_fn, device, amp, plan.batch_size, seed)
        history.append(record)
        if epoch in (1, plan.epochs) or epoch % max(1, plan.epochs // 10) == 0:  # ~10 progress lines a model
            log.info("%s epoch %d/%d train_loss %.4f%s", name, epoch, plan.epochs, record["train_loss"],
                     f" inner_val_loss {record['val_loss']:.4f}" if n_inner else "")
        if not math.isfinite(record["train_loss"]):
            log.warning("%s: training loss is not finite at epoch %d; stopping", name, epoch)
            break
        if n_last and epoch > plan.epochs - n_last:
            avg, n_avg = _running_average(avg, model.state_dict(), n_avg), n_avg + 1
        if n_inner and epoch >= min_epochs:
            if record["val_loss"] < best[0] - 1e-6:
                best, stale = (record["val_loss"], epoch, copy.deepcopy(model.state_dict())), 0
            else:
                stale += 1
                if stale >= plan.patience:
                    break
    if best[2] is not None:
        model.load_state_dict(best[2])
    elif avg is not None:
        model.load_state_dict(avg)
    seconds = time.perf_counter() - t0
    return FitResult(epochs_run=epoch, best_epoch=best[1] if n_inner else epoch, steps=step,
                     seconds=seconds, stopped_early=epoch < plan.epochs, amp=amp, device=str(device),
                     history=history, inner_val_size=n_inner)


@torch.no_grad()
def _running_average(avg: dict | None, state: dict, n: int) -> dict:
    """The mean of n + 1 state dicts, given the mean of the first n."""
    if avg is None:
        return {k: v.detach().clone() for k, v in state.items()}
    for k, v in state.items():
        if v.is_floating_point():
            avg[k] += (v.detach() - avg[k]) / (n + 1)
    return avg


@torch.no_grad()
def evaluate_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor | None, loss_fn: LossFn,
                  device: torch.device, amp: bool, batch_size: int, seed: int) -> float:
    model.eval()
    total = 0.0
    for i in range(0, len(X), max(batch_size, 256)):
        xb = X[i: i + max(batch_size, 256)].to(device)
        yb = None if y is None else y[i: i + len(xb)].to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            total += float(loss_fn(model, xb, yb)) * len(xb)
    return total / len(X)


@contextlib.contextmanager
def full_fp32():
    """TF32 off for the duration: PyTorch lets cuDNN RNNs (and, if set, matmuls) use TF32 on Ampere
    and later (H100/H200), whose 10-bit mantissa moves probabilities by ~1e-3; evaluation must be
    reproducible by the CPU serving check (moola/serve/check.py), so it runs in full fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def predict_proba(model: nn.Module, X: torch.Tensor, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    """(N, T, C) -> (N, K) class probabilities, in float32 on the CPU; computed in full fp32 (no
    autocast, no TF32) on any device, so that a GPU's predictions are the CPU's up to rounding."""
    model.eval().to(device)
    out = []
    with full_fp32():
        for i in range(0, len(X), batch_size):
            out.append(torch.softmax(model(X[i: i + batch_size].to(device)).float(), dim=1).cpu())
    return torch.cat(out)

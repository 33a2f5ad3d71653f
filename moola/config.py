"""Typed gate configuration: every knob of gates 1-5 with its default, and the two presets.

Budgets that depend on the device (epochs, batch size) default to None and are resolved by
:func:`resolve_budget` once the device is known: the full budget on a GPU, a smaller one on
CPU so the embedded demo stays quick. The resolved values are what ``result.json`` records.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError, config_error


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Frozen):
    """EnhancedSimpleLSTM: BiLSTM -> attention -> residual + LayerNorm -> pooling -> MLP head."""

    hidden: int | None = Field(None, gt=0, description="LSTM units per direction; None: 32 on CPU, 128 on GPU")
    num_layers: int = Field(1, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    pooling: Literal["mean", "max", "last"] = Field("max", description=(
        "max or mean over time, or the last step; max: GunPoint 0.97 vs 0.90 with mean (bench/RESULTS.md)"))
    input_gain: float = Field(3.0, gt=0, description=(
        "factor on the per-window normalised input before the LSTM: unit-variance inputs barely move "
        "the LSTM's gates at PyTorch's initialisation, and the model sat at the majority class for tens "
        "of epochs (bench/RESULTS.md, 'Baseline recipe')"))
    stride: int | None = Field(None, ge=1, description=(
        "average the input over this many consecutive steps before the LSTM; None: "
        "auto_stride(T), the smallest that leaves at most MAX_LSTM_STEPS steps"))


class FitConfig(_Frozen):
    """The one training loop's settings (classifiers)."""

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


class PretrainConfig(_Frozen):
    """Gate 3: BiLSTM masked autoencoder."""

    hidden: int | None = Field(None, gt=0, description="None: the classifier's width (transfer is layer-matched)")
    stride: int | None = Field(None, ge=1, description="None: the classifier's (transfer sees the same input steps)")
    num_layers: int = Field(1, ge=1, description=(
        "the transfer classifier takes this depth; 1 = the baseline's, so Gate 4 differs from Gate 1 only "
        "by the pretrained start (a 2-layer encoder cost GunPoint 0.22 F1, bench/RESULTS.md)"))
    dropout: float = 0.2
    mask_ratio: float = Field(0.15, gt=0, lt=1)
    patch: int = Field(7, ge=1)
    epochs: int | None = Field(None, ge=1, description="None: 3 on CPU, 50 on GPU")
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 10
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="share of steps with linear warm-up")
    schedule: Literal["cosine", "constant"] = "cosine"
    clip: float | None = Field(1.0, gt=0, description="gradient-norm clipping")
    inner_val_frac: float = Field(0.1, ge=0, lt=0.5, description="latest share of the pool for early stopping "
                                  "(0 when the pool has fewer than 20 windows)")
    min_epochs_frac: float = Field(0.0, ge=0, le=1, description="share of epochs always trained")
    amp: Literal["auto", "on", "off"] = "auto"
    max_windows_cpu: int | None = Field(1000, description="cap on the pool when training on CPU")


class TransferConfig(_Frozen):
    """Gate 4: load the encoder into a layer-matched classifier."""

    min_match_ratio: float = Field(0.80, gt=0, le=1)
    freeze_frac: float = Field(0.0, ge=0, lt=1, description=(
        "share of epochs with the encoder frozen; 0: fine-tuned from the start (freezing 30% cost "
        "GunPoint 0.10 F1 with the CPU budget's 3-epoch encoder, bench/RESULTS.md)"))


class AugmentConfig(_Frozen):
    """Gate 5: per-sample augmentation of train batches."""

    prob: float = Field(0.5, ge=0, le=1, description="chance each transform hits a given sample")
    jitter_sigma: float = 0.05
    scaling_sigma: float = 0.1
    magnitude_warp_sigma: float = 0.2
    time_warp_sigma: float = 0.2
    knots: int = 4


class GateConfig(_Frozen):
    """Everything a gate run needs beyond the data and the folders."""

    preset: str = "default"
    # 32 bits: numpy's legacy generators and scikit-learn's random_state take 0..2**32 - 1 (a larger
    # seed reached torch.manual_seed as an overflow traceback)
    seed: int = Field(17, ge=0, le=2**32 - 1)
    normalize: Literal["auto", "ohlc_window", "ohlc", "zscore", "none"] = Field(
        "auto", description="auto: for OHLC, log-price relative to the first open standardised per window "
        "(ohlc_window), else a per-window z-score (moola/preprocess.py)")
    positive_class: str | None = Field(None, description="for binary PR-AUC; None: train minority")
    model: ModelConfig = ModelConfig()
    fit: FitConfig = FitConfig()
    pretrain: PretrainConfig = PretrainConfig()
    transfer: TransferConfig = TransferConfig()
    augment: AugmentConfig = AugmentConfig()
    minirocket_kernels: int = 10_000
    max_memory_gb: float = Field(16.0, gt=0, description="Gate 0 refuses data whose estimated training memory "
                                 "exceeds this (moola/memory.py)")


PRESETS: dict[str, dict] = {
    "default": {},
    # The seed's configuration, exactly: raw prices, 3 epochs at batch 512 on 78 windows (3
    # optimiser steps), last-step pooling, no early-stopping split. Our gates must refuse it.
    "seed-smoke": {
        "seed": 17, "normalize": "none",
        "model": {"hidden": 128, "num_layers": 1, "heads": 2, "dropout": 0.1, "pooling": "last", "stride": 1,
                  "input_gain": 1.0},
        "fit": {"epochs": 3, "batch_size": 512, "lr": 5e-4, "amp": "on", "patience": 20,
                "inner_val_frac": 0.0, "min_epochs_frac": 0.0, "schedule": "constant", "warmup_frac": 0.0,
                "weight_decay": 1e-4, "clip": None},
        "augment": {"prob": 0.0},
    },
}


# the preset names, as a type: the flows' parameter schema offers them as a choice in the UI
PresetName = Literal[tuple(PRESETS)]


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_gate_config(preset: str = "default", path: str | Path | None = None,
                     seed: int | None = None) -> GateConfig:
    """Preset, then a JSON/TOML file's overrides, then ``--seed``."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset: expected one of {', '.join(PRESETS)}, found {preset!r}")
    data = _merge({"preset": preset}, PRESETS[preset])
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
            over = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{p}: cannot read the config file ({exc})") from exc
        data = _merge(data, over)
    if seed is not None:
        data["seed"] = seed
    try:
        return GateConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, where=f"{path}: " if path else "") from exc


# CPU widths: on the sample data (3 folds of 20 windows, seeds 1-3) a 32-unit BiLSTM trained
# 3x faster than a 128-unit one and scored no worse (bench/RESULTS.md, "CPU width"); the
# 128-unit model is the seed's and stays the GPU default.
CPU_HIDDEN, GPU_HIDDEN = 32, 128
MAX_LSTM_STEPS = 64


def auto_stride(t: int, stride: int | None = None) -> int:
    """The input stride for windows of ``t`` steps: ``stride`` when set, else the smallest that
    leaves at most MAX_LSTM_STEPS steps for the LSTM. Why: the recurrent model's cost grows
    with T and long windows keep it at the majority class for tens of epochs (bench/RESULTS.md,
    "Baseline recipe")."""
    return stride or max(1, -(-t // MAX_LSTM_STEPS))


def default_lr(hidden: int) -> float:
    """Measured on GunPoint (bench/RESULTS.md, "Baseline recipe"): 32 units learn at 5e-3; 128
    units collapse to the majority class there at 5e-3 (2 seeds of 3) and reach 0.998 at 2e-3."""
    return 5e-3 if hidden <= CPU_HIDDEN else 2e-3


def resolve_budget(cfg: GateConfig, device: str) -> GateConfig:
    """Fill device-dependent budgets; the result is what gets recorded."""
    gpu = device.startswith("cuda")
    hidden = cfg.model.hidden or (GPU_HIDDEN if gpu else CPU_HIDDEN)
    model = cfg.model.model_copy(update={"hidden": hidden})
    fit = cfg.fit.model_copy(update={
        "lr": cfg.fit.lr or default_lr(hidden),
        "epochs": cfg.fit.epochs or (150 if gpu else 60),
        "batch_size": cfg.fit.batch_size or 16,
    })
    pre = cfg.pretrain.model_copy(update={
        "hidden": cfg.pretrain.hidden or hidden,
        "epochs": cfg.pretrain.epochs or (50 if gpu else 3),
        "max_windows_cpu": None if gpu else cfg.pretrain.max_windows_cpu,
    })
    return cfg.model_copy(update={"model": model, "fit": fit, "pretrain": pre})

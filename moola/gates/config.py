"""A gate run's configuration: the model's, the fit's, pretraining's and augmentation's settings
(each declared beside its code: models/lstm.py, train/fit.py, models/autoencoder.py,
train/augment.py), Gate 4's, the seed, and the two presets.

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

from moola.core.errors import ConfigError, config_error
from moola.models.autoencoder import PretrainConfig
from moola.models.lstm import CPU_HIDDEN, GPU_HIDDEN, ModelConfig
from moola.train.augment import AugmentConfig
from moola.train.fit import FitConfig, default_lr

# The training seed's default (the flows' `seed` parameter, --seed, the nightly challenger): declared here.
DEFAULT_SEED = 17


class TransferConfig(BaseModel):
    """Gate 4: load the encoder into a layer-matched classifier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_match_ratio: float = Field(0.80, gt=0, le=1)
    freeze_frac: float = Field(0.0, ge=0, lt=1, description=(
        "share of epochs with the encoder frozen; 0: fine-tuned from the start (freezing 30% cost "
        "GunPoint 0.10 F1 with the CPU budget's 3-epoch encoder, bench/RESULTS.md)"))


class GateConfig(BaseModel):
    """Everything a gate run needs beyond the data and the folders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str = "default"
    # 32 bits: numpy's legacy generators and scikit-learn's random_state take 0..2**32 - 1 (a larger
    # seed reached torch.manual_seed as an overflow traceback)
    seed: int = Field(DEFAULT_SEED, ge=0, le=2**32 - 1)
    normalize: Literal["auto", "ohlc_window", "ohlc", "zscore", "none"] = Field(
        "auto", description="auto: for OHLC, log-price relative to the first open standardised per window "
        "(ohlc_window), else a per-window z-score (moola/train/normalize.py)")
    positive_class: str | None = Field(None, description="for binary PR-AUC; None: train minority")
    model: ModelConfig = ModelConfig()
    fit: FitConfig = FitConfig()
    pretrain: PretrainConfig = PretrainConfig()
    transfer: TransferConfig = TransferConfig()
    augment: AugmentConfig = AugmentConfig()
    minirocket_kernels: int = 10_000
    max_memory_gb: float = Field(16.0, gt=0, description="Gate 0 refuses data whose estimated training memory "
                                 "exceeds this (moola/train/memory.py)")


PRESETS: dict[str, dict] = {
    "default": {},
    # The seed's configuration, exactly: raw prices, 3 epochs at batch 512 on 78 windows (3
    # optimiser steps), last-step pooling, no early-stopping split. Our gates must refuse it.
    "seed-smoke": {
        "seed": DEFAULT_SEED, "normalize": "none",
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

"""Load a shipped classifier folder (model.json + model.safetensors) and predict with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError


def load_classifier(folder: Path):
    """(model, config) from a gate or registry folder; weights through safetensors only."""
    from .config import ModelConfig
    from .modelfile import load_weights
    from .models.lstm import EnhancedSimpleLSTM
    cfg_path = folder / "model.json"
    if not folder.is_dir():
        raise ConfigError(f"--model {folder}: no such folder")
    if not cfg_path.is_file():
        raise ConfigError(f"--model {folder}: no model.json there (expected a baseline, transfer or augment "
                          "gate folder, or a registry version)")
    if (folder / "MANIFEST.sha256").is_file():
        from .modelfile import verify_folder
        verify_folder(folder)  # a tampered or half-copied folder fails here, before any weight is read
    cfg = json.loads(cfg_path.read_text())
    model = EnhancedSimpleLSTM(cfg["n_channels"], len(cfg["classes"]), ModelConfig(**cfg["model"]))
    model.load_state_dict(load_weights(folder / "model.safetensors"))
    return model, cfg


def predict_windows(folder: Path, X: np.ndarray, source: str, device: str = "auto") -> tuple[np.ndarray, list[str]]:
    """Raw windows (N, T, C) -> ((N, K) probabilities, classes), with the model's own normaliser."""
    import torch

    from .preprocess import Normalizer
    from .train import pick_device, predict_proba
    model, cfg = load_classifier(folder)
    if tuple(X.shape[1:]) != (cfg["T"], cfg["n_channels"]):
        raise DataError(f"{source}: windows are {X.shape[1]} x {X.shape[2]}, the model expects "
                        f"{cfg['T']} x {cfg['n_channels']}")
    Xn = Normalizer(**cfg["normalizer"]).transform(X)
    proba = predict_proba(model, torch.from_numpy(Xn), pick_device(device)).numpy().astype(np.float64)
    return proba, list(cfg["classes"])

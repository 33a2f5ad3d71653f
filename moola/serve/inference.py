"""Load a shipped classifier folder (model.json + model.safetensors) and predict with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from moola.core.errors import ConfigError, DataError, ModelFileError
from moola.core.seal import verify_folder
from moola.models.files import load_weights
from moola.models.lstm import EnhancedSimpleLSTM, ModelConfig
from moola.train.fit import pick_device, predict_proba
from moola.train.normalize import Normalizer

MODEL_KEYS = ("model", "classes", "n_channels", "T", "normalizer")
# what a model saved before these settings existed did: every step, the input as it came
LEGACY_MODEL = {"stride": 1, "input_gain": 1.0}


def load_classifier(folder: Path, expected_manifest_sha256: str | None = None):
    """(model, config) from a gate or registry folder; weights through safetensors only.

    The folder must carry its MANIFEST and match it file for file (nothing unlisted); a
    registered version must also match the MANIFEST sha256 the registry recorded."""
    from pydantic import ValidationError

    folder = Path(folder)
    cfg_path = folder / "model.json"
    if not folder.is_dir():
        raise ConfigError(f"--model {folder}: no such folder")
    if not cfg_path.is_file():
        raise ConfigError(f"--model {folder}: no model.json there (expected a baseline, transfer or augment "
                          "gate folder, or a registry version)")
    verify_folder(folder, expected_manifest_sha256)  # before any byte of it is trusted
    try:
        cfg = json.loads(cfg_path.read_text())
    except ValueError as exc:
        raise ModelFileError(f"{cfg_path}: not valid JSON ({exc})") from exc
    missing = [k for k in MODEL_KEYS if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise ModelFileError(f"{cfg_path}: missing key(s) {', '.join(missing)}; not a classifier written by moola")
    try:
        model = EnhancedSimpleLSTM(cfg["n_channels"], len(cfg["classes"]), ModelConfig(**{**LEGACY_MODEL, **cfg["model"]}))
        model.load_state_dict(load_weights(folder / "model.safetensors"))
    except (ValidationError, TypeError, RuntimeError) as exc:
        raise ModelFileError(f"{cfg_path}: does not describe the weights in model.safetensors "
                             f"({str(exc).splitlines()[0]})") from exc
    return model, cfg


def predict_windows(folder: Path, X: np.ndarray, source: str, device: str = "auto",
                    expected_manifest_sha256: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Raw windows (N, T, C) -> ((N, K) probabilities, classes), with the model's own normaliser."""
    import torch

    model, cfg = load_classifier(folder, expected_manifest_sha256)
    if tuple(X.shape[1:]) != (cfg["T"], cfg["n_channels"]):
        raise DataError(f"{source}: windows are {X.shape[1]} x {X.shape[2]}, the model expects "
                        f"{cfg['T']} x {cfg['n_channels']}")
    try:
        norm = Normalizer(**cfg["normalizer"])
    except TypeError as exc:
        raise ModelFileError(f"{Path(folder) / 'model.json'}: 'normalizer' is not one moola wrote ({exc})") from exc
    Xn = norm.transform(X)
    proba = predict_proba(model, torch.from_numpy(Xn), pick_device(device)).numpy().astype(np.float64)
    return proba, list(cfg["classes"])

"""Model files that are safe to load: safetensors + JSON config for torch, sha256-pinned pickles."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from moola.core.errors import ModelFileError
from moola.core.files import sha256_file


def save_torch(model: torch.nn.Module, folder: Path, stem: str, config: dict,
               state: dict[str, torch.Tensor] | None = None) -> Path:
    """``stem.safetensors`` (weights only) and ``stem.json`` (what it takes to rebuild it)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = state if state is not None else model.state_dict()
    path = folder / f"{stem}.safetensors"
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))
    (folder / f"{stem}.json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise ModelFileError(f"{path}: not a valid safetensors file ({exc})") from exc


def save_pickle(obj, path: Path) -> str:
    """Pickle ``obj``; return its sha256, which must be recorded and checked before loading."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    return sha256_file(path)


def load_pickle_verified(path: Path, expected_sha256: str):
    """Unpickle only a file whose sha256 matches the recorded one (pickles run code on load)."""
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelFileError(f"{path}: sha256 {actual} does not match the recorded {expected_sha256}; "
                             "refusing to unpickle it")
    with open(path, "rb") as f:
        return pickle.load(f)

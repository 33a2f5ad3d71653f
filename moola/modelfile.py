"""Model files that are safe to load: safetensors + JSON config for torch, sha256-pinned pickles,
and the ``MANIFEST.sha256`` that lists every file of an output folder."""

from __future__ import annotations

import json
import pickle
from pathlib import Path, PurePosixPath

import torch
from safetensors.torch import load_file, save_file

from .digest import sha256_file  # noqa: F401  (re-exported for callers)
from .errors import ModelFileError

MANIFEST = "MANIFEST.sha256"


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


def write_manifest(folder: Path) -> Path:
    """``MANIFEST.sha256`` in sha256sum format over every other file under ``folder``."""
    lines = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            lines.append(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}")
    out = folder / MANIFEST
    out.write_text("\n".join(lines) + "\n")
    return out


def parse_manifest(text: str) -> dict[str, str]:
    """{relative path: sha256}; refuses paths that could escape the folder."""
    entries = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        p = PurePosixPath(rel)
        if (len(digest) != 64 or not rel or p.is_absolute() or ".." in p.parts or "\\" in rel
                or rel.startswith("~")):
            raise ModelFileError(f"{MANIFEST} line {n}: refusing entry {rel!r} (must be a relative "
                                 "path inside the folder with a sha256)")
        entries[str(p)] = digest
    return entries


def verify_folder(folder: Path, expected_manifest_sha256: str | None = None) -> dict[str, str]:
    """Check every file of the folder against its manifest; raise on any difference.

    The MANIFEST is required, every file it lists must match, and a file it does not list is
    refused (nothing rides along unchecked). With ``expected_manifest_sha256`` (recorded outside
    the folder, by the registry) the MANIFEST itself must be the one recorded: an edit whose
    manifest line was updated too is caught there."""
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise ModelFileError(f"{folder}: no {MANIFEST}; a model folder is only trusted with its manifest")
    raw = mpath.read_bytes()
    if expected_manifest_sha256 is not None:
        import hashlib
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected_manifest_sha256:
            raise ModelFileError(f"{mpath}: sha256 {actual} is not the {expected_manifest_sha256} the registry "
                                 "recorded when this version was registered; the folder was changed")
    try:
        entries = parse_manifest(raw.decode())
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{mpath}: not a text manifest") from exc
    for rel, digest in entries.items():
        p = folder / rel
        if not p.is_file():
            raise ModelFileError(f"{p}: listed in {MANIFEST} but missing")
        actual = sha256_file(p)
        if actual != digest:
            raise ModelFileError(f"{p}: sha256 {actual} does not match {MANIFEST} ({digest})")
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if (p.is_file() or p.is_symlink()) and p != mpath
                   and p.relative_to(folder).as_posix() not in entries)
    if extra:
        raise ModelFileError(f"{folder}: file(s) not listed in {MANIFEST}: {', '.join(extra[:5])}"
                             + (f" and {len(extra) - 5} more" if len(extra) > 5 else "") + "; refusing the folder")
    return entries

"""The model registry: plain files under MOOLA_ARTIFACTS (default ./artifacts).

    models/<name>/v<N>/        model files + card.json (metrics, config, data manifest sha256, ...)
    registry.json              {"production": {...} | null, "history": [...], "degraded": [...]}
    experiment_results.jsonl   one JSON line per gate result and per decision

Every change is serialised by a file lock and made atomic: a version folder is built under a
temporary name and renamed; registry.json is written to a temporary file, fsynced and
``os.replace``d; a JSONL line is one ``write`` of a whole line to a file opened for append.
A crash at any point leaves the old or the new state, never one in between.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .errors import ConfigError
from .modelfile import verify_folder


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Registry:
    def __init__(self, root: str | Path = "artifacts"):
        self.root = Path(root)
        self.path = self.root / "registry.json"
        self.jsonl = self.root / "experiment_results.jsonl"

    def _lock(self):
        from filelock import FileLock  # orchestrator-side only
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".registry.lock"), timeout=60)

    def read(self) -> dict:
        if not self.path.is_file():
            return {"production": None, "history": [], "degraded": []}
        state = json.loads(self.path.read_text())
        state.setdefault("degraded", [])
        return state

    def append(self, record: dict) -> None:
        """One whole JSON line, one write, fsynced."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, default=str) + "\n").encode()
        fd = os.open(self.jsonl, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _versions(self, name: str) -> list[int]:
        d = self.root / "models" / name
        return sorted(int(p.name[1:]) for p in d.glob("v*") if p.is_dir() and p.name[1:].isdigit()) if d.is_dir() else []

    def register(self, name: str, gate_dir: Path, card: dict) -> dict:
        """Copy a verified gate folder in as the next version of ``name``; return its pointer."""
        verify_folder(gate_dir)
        with self._lock():
            return self._register(name, gate_dir, card)

    def _register(self, name: str, gate_dir: Path, card: dict) -> dict:  # holding the lock
        version = (self._versions(name) or [0])[-1] + 1
        final = self.root / "models" / name / f"v{version}"
        tmp = final.with_name(f".v{version}.{uuid.uuid4().hex}.tmp")
        shutil.copytree(gate_dir, tmp)
        _write_json_atomic(tmp / "card.json", {**card, "name": name, "version": version, "registered_at": _now()})
        os.replace(tmp, final)
        return {"name": name, "version": version, "path": str(final)}

    def set_production(self, pointer: dict | None, action: str, reason: str) -> dict:
        """Point production at ``pointer`` (or nothing), recording the change in history."""
        with self._lock():
            return self._set_production(pointer, action, reason)

    def _set_production(self, pointer: dict | None, action: str, reason: str) -> dict:  # holding the lock
        state = self.read()
        before = state["production"]
        state["production"] = None if pointer is None else {**pointer, "since": _now()}
        state["history"].append({"at": _now(), "action": action, "reason": reason, "from": before,
                                 "to": state["production"]})
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.path, state)
        return state

    def ship(self, name: str, gate_dir: Path, card: dict, reason: str, expected: dict | None) -> dict | None:
        """Register and point production at it, in one locked step, only if production is still
        ``expected`` (what the decision was made against). Returns the new state, or None when
        production changed meanwhile: the caller decides again against the new production."""
        verify_folder(gate_dir)
        with self._lock():
            if self._key(self.read()["production"]) != self._key(expected):
                return None
            pointer = self._register(name, gate_dir, card)
            return self._set_production(pointer, "ship", reason)

    def rollback(self, to: str | None = None) -> dict:
        """Return production to version ``to`` ('vN') of its model, or to the previous production."""
        state = self.read()
        prod = state["production"]
        if prod is None:
            raise ConfigError("registry rollback: there is no production model")
        if to is not None:
            if not to.startswith("v") or not to[1:].isdigit() or int(to[1:]) not in self._versions(prod["name"]):
                raise ConfigError(f"registry rollback --to {to}: {prod['name']} has versions "
                                  f"{', '.join(f'v{v}' for v in self._versions(prod['name']))}")
            target = {"name": prod["name"], "version": int(to[1:]),
                      "path": str(self.root / "models" / prod["name"] / to)}
        else:
            previous = [h["from"] for h in reversed(state["history"]) if h["to"] and h["from"]
                        and (h["to"]["name"], h["to"]["version"]) == (prod["name"], prod["version"])]
            if not previous:
                raise ConfigError("registry rollback: production has no earlier version to return to")
            target = {k: previous[0][k] for k in ("name", "version", "path")}
        return self.set_production(target, "rollback", f"rollback to {target['name']} v{target['version']}")

    @staticmethod
    def _key(pointer: dict | None):
        return None if pointer is None else (pointer["name"], pointer["version"])

    def _degraded_keys(self, state: dict) -> set:
        return {self._key(d) for d in state["degraded"]}

    def is_degraded(self, pointer: dict | None) -> bool:
        return pointer is not None and self._key(pointer) in self._degraded_keys(self.read())

    def revert_to_last_good(self, reason: str, mark_degraded: bool = True) -> tuple[dict, bool]:
        """Mark production degraded, then point it at the most recent earlier production that is
        not degraded. Returns (state, reverted); with no good version left, production stays
        (marked) and ``reverted`` is False: the caller must say so loudly."""
        with self._lock():
            state = self.read()
            prod = state["production"]
            if prod is None:
                return state, False
            if mark_degraded and self._key(prod) not in self._degraded_keys(state):
                state["degraded"].append({"name": prod["name"], "version": prod["version"], "at": _now(),
                                          "reason": reason})
            bad = self._degraded_keys(state)
            earlier = [h["to"] for h in reversed(state["history"]) if h["to"] is not None]
            good = next((p for p in earlier if self._key(p) not in bad), None)
            if good is not None:
                target = {k: good[k] for k in ("name", "version", "path")}
                state["production"] = {**target, "since": _now()}
                state["history"].append({"at": _now(), "action": "revert", "reason": reason, "from": prod,
                                         "to": state["production"]})
            _write_json_atomic(self.path, state)
        return state, good is not None

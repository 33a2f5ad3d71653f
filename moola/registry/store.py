"""The model registry: plain files under MOOLA_ARTIFACTS (default ./artifacts).

    models/<name>/v<N>/        model files + card.json, sealed by their own MANIFEST.sha256
    registry.json              {"production": pointer | null, "history": [...], "degraded": [...],
                                "versions": {"<name>/v<N>": {"manifest_sha256": ...}}}
    experiment_results.jsonl   one JSON line per gate result and per decision

A pointer (``Pointer``) is ``{"name", "version", "path", "manifest_sha256"}`` with ``path`` relative
to the registry root (``models/<name>/v<N>``), so the registry works from any working directory;
:meth:`Registry.folder` turns it into a path. The file holds pointers as JSON; every method that
takes or returns one uses ``Pointer``. ``versions`` records the sha256 of each version's
MANIFEST when it was registered: a folder whose MANIFEST no longer matches is refused.
The whole file is read into a ``RegistryState`` (a file that does not fit it is a RegistryError
naming the field) and written back from it as the same JSON.

Every change is serialised by a file lock and made atomic: a version folder is built under a
temporary name and renamed; registry.json is written to a temporary file, fsynced and
``os.replace``d; a JSONL line is one ``write`` of a whole line to a file opened for append.
Read, decide and write happen under the lock (no check-then-act). A crash at any point leaves
the old or the new state, never one in between; a failed write keeps the old state and says so.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moola.core.errors import ConfigError, RegistryBusy, RegistryError
from moola.core.files import fsync_dir, write_json_atomic
from moola.core.seal import MANIFEST, verify_folder, write_manifest

LOCK_TIMEOUT_S = 60.0
_VERSION = re.compile(r"v([1-9][0-9]*)", flags=re.ASCII)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_version(text: str) -> int:
    """'v3' -> 3. Only 'v' and ASCII digits without a leading zero ('v01', 'v²', '3' are refused)."""
    m = _VERSION.fullmatch(text or "")
    if m is None:
        raise ConfigError(f"version {text!r}: expected 'v' followed by a number such as v3")
    return int(m.group(1))


class Pointer(BaseModel):
    """A registered version: ``models/<name>/v<version>``, sealed by a MANIFEST whose sha256 the
    registry recorded. ``since``: when it became production (production and history only)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: str
    version: int
    path: str
    manifest_sha256: str | None = None
    since: str | None = None

    @classmethod
    def parse(cls, stored: dict | None) -> "Pointer | None":
        """A pointer as registry.json and experiment_results.jsonl hold it (None stays None)."""
        return None if stored is None else cls.model_validate(stored)

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.version

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def stored(self) -> dict:
        """As registry.json holds it."""
        return self.model_dump(exclude_none=True)


class Change(BaseModel):
    """One change of production in ``history``: ship, rollback or revert, from one pointer to another."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    at: str
    action: str
    reason: str = ""
    from_: Pointer | None = Field(None, alias="from")
    to: Pointer | None = None


class Degraded(BaseModel):
    """A version that nightly re-validation (or a revert) found degraded: never returned to by itself."""

    model_config = ConfigDict(extra="allow")
    name: str
    version: int
    at: str = ""
    reason: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.version


class VersionRecord(BaseModel):
    """What the registry recorded of a version when it was registered."""

    model_config = ConfigDict(extra="allow")
    manifest_sha256: str
    registered_at: str | None = None


class RegistryState(BaseModel):
    """registry.json, typed: the production pointer, the history of its changes, the versions marked
    degraded and the MANIFEST sha256 of every registered version (``"<name>/v<N>"``)."""

    model_config = ConfigDict(extra="allow")
    production: Pointer | None
    history: list[Change]
    degraded: list[Degraded] = []
    versions: dict[str, VersionRecord] = {}

    def stored(self) -> dict:
        """As registry.json holds it (the JSON moola has always written)."""
        def pointer(p: Pointer | None) -> dict | None:
            return None if p is None else p.stored()
        return {**(self.model_extra or {}), "production": pointer(self.production),
                "history": [{**(h.model_extra or {}), "at": h.at, "action": h.action, "reason": h.reason,
                             "from": pointer(h.from_), "to": pointer(h.to)} for h in self.history],
                "degraded": [d.model_dump() for d in self.degraded],
                "versions": {k: v.model_dump(exclude_none=True) for k, v in self.versions.items()}}

    def degraded_keys(self) -> set[tuple[str, int]]:
        return {d.key for d in self.degraded}

    def manifest_of(self, name: str, version: int) -> str | None:
        rec = self.versions.get(_vkey(name, version))
        return None if rec is None else rec.manifest_sha256


def _key(pointer: Pointer | None):
    """(name, version) of a pointer; None stays None."""
    return None if pointer is None else pointer.key


def _vkey(name: str, version: int) -> str:
    return f"{name}/v{version}"


def _read_jsonl(path: Path) -> list[dict]:
    """Every JSON line of ``path`` (none when it does not exist); RegistryError naming the line."""
    if not path.is_file():
        return []
    rows = []
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if text.strip():
            try:
                rows.append(json.loads(text))
            except ValueError as exc:
                raise RegistryError(f"{path} line {n}: not valid JSON ({exc}); restore it from a backup") from exc
    return rows


def _append_jsonl(path: Path, data: bytes) -> None:
    """Whole lines appended in one write and fsynced: a crash leaves none of them or all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot be opened for append ({exc.strerror or exc})") from exc
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


class Registry:
    def __init__(self, root: str | Path = "artifacts", lock_timeout: float = LOCK_TIMEOUT_S):
        self.root = Path(root)
        self.path = self.root / "registry.json"
        self.jsonl = self.root / "experiment_results.jsonl"
        self.lock_timeout = lock_timeout

    # -- reading ------------------------------------------------------------------------------
    def read(self) -> dict:
        """registry.json as JSON (what ``moola registry show --json`` prints), checked as :meth:`state`."""
        return self.state().stored()

    def state(self) -> RegistryState:
        """The registry state; a damaged registry.json is a RegistryError naming the file (and the field)."""
        if not self.path.exists():
            return RegistryState(production=None, history=[])
        try:
            text = self.path.read_text()
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{self.path}: cannot be read ({exc}); restore it from a backup") from exc
        try:
            state = json.loads(text)
        except ValueError as exc:
            what = "empty" if not text.strip() else f"not valid JSON ({exc})"
            raise RegistryError(f"{self.path}: {what}; restore it from a backup (moola never leaves it "
                                "half-written: something else changed it)") from exc
        if not isinstance(state, dict):
            raise RegistryError(f"{self.path}: expected a JSON object with 'production' and 'history', "
                                f"found {type(state).__name__}; restore it from a backup")
        missing = [k for k in ("production", "history") if k not in state]
        if missing or not isinstance(state["history"], list) or not (
                state["production"] is None or isinstance(state["production"], dict)):
            raise RegistryError(f"{self.path}: " + (f"missing key(s) {', '.join(missing)}" if missing else
                                "'production' must be an object or null and 'history' a list")
                                + "; restore it from a backup")
        try:
            return RegistryState.model_validate(state)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise RegistryError(f"{self.path}: {where}: {err['msg']}; restore it from a backup") from None

    def production(self) -> Pointer | None:
        """The production pointer, or None."""
        return self.state().production

    def folder(self, pointer: Pointer) -> Path:
        """The version folder of a pointer (relative paths are under the registry root)."""
        p = Path(pointer.path)
        return p if p.is_absolute() else self.root / p

    def expected_manifest(self, folder: Path) -> str | None:
        """The recorded MANIFEST sha256 when ``folder`` is a version of this registry, else None.
        A folder under ``models/`` that the registry never recorded is refused."""
        folder = Path(folder).resolve()
        models = (self.root / "models").resolve()
        if not folder.is_relative_to(models):
            return None
        rel = folder.relative_to(models).parts
        record = self.state().versions.get("/".join(rel)) if len(rel) == 2 else None
        if record is None:
            raise ConfigError(f"{folder}: lies in the registry but is not a version it recorded; "
                              "models are added by `decide`, never by hand")
        return record.manifest_sha256

    def records(self, kind: str | None = None) -> list[dict]:
        """The JSONL lines (of ``kind``: gate_result, decision, revalidation), oldest first."""
        return [rec for rec in _read_jsonl(self.jsonl) if kind is None or rec.get("kind") == kind]

    def last_decision(self) -> dict | None:
        """The most recent decision recorded, or None."""
        decisions = self.records("decision")
        return decisions[-1]["decision"] if decisions else None

    def windows_compared_with(self, pointer: Pointer) -> frozenset[str]:
        """The windows earlier decisions compared this version (as production) with candidates on."""
        key = _key(pointer)
        return frozenset(w for r in self.records("decision")
                         if _key(Pointer.parse(r["decision"].get("production_before"))) == key
                         for w in r["decision"].get("production_windows") or [])

    def production_card(self) -> tuple[Pointer | None, dict | None]:
        """(production pointer, its gate result.json) or (None, None)."""
        prod = self.production()
        if prod is None:
            return None, None
        return prod, json.loads((self.folder(prod) / "result.json").read_text())

    def production_folder(self) -> tuple[Path, str]:
        """(folder, recorded MANIFEST sha256) of production; ConfigError when there is none."""
        state = self.state()  # one read: pointer and record from the same state
        prod = state.production
        if prod is None:
            raise ConfigError("no production model yet (see `moola registry show`)")
        return self.folder(prod), state.manifest_of(prod.name, prod.version)

    # -- writing ------------------------------------------------------------------------------
    @contextmanager
    def _lock(self):
        from filelock import FileLock, Timeout  # orchestrator-side only
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".registry.lock"), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise RegistryBusy(f"{self.root / '.registry.lock'}: held by another process for more than "
                               f"{self.lock_timeout:.0f} s (another decide or rollback?); try again, "
                               "or raise MOOLA_REGISTRY_LOCK_TIMEOUT") from exc
        try:
            yield
        finally:
            lock.release()

    def _write_state(self, state: RegistryState) -> None:
        try:
            write_json_atomic(self.path, state.stored())
        except OSError as exc:
            raise RegistryError(f"{self.path}: cannot be written ({exc.strerror or exc}); the old state is "
                                "kept" + ("; free some disk space" if exc.errno == errno.ENOSPC else "")) from exc

    def append(self, record: dict) -> None:
        """One whole JSON line, one write, fsynced."""
        _append_jsonl(self.jsonl, (json.dumps(record, default=str) + "\n").encode())

    def ledger_path(self, pointer: Pointer) -> Path:
        """The re-validation ledger of a version (moola.decide.revalidate): windows it was scored on after
        it shipped, one JSON line each."""
        return self.root / "ledger" / pointer.name / f"v{pointer.version}.jsonl"

    def ledger(self, pointer: Pointer) -> list[dict]:
        return _read_jsonl(self.ledger_path(pointer))

    def extend_ledger(self, pointer: Pointer, rows: list[dict]) -> None:
        """Append ``rows`` to the version's ledger in one write, fsynced, under the registry lock,
        skipping any window already there (two runs of one night count it once)."""
        if not rows:
            return
        with self._lock():
            known = {r["window_id"] for r in self.ledger(pointer)}
            text = "".join(json.dumps(r) + "\n" for r in rows if r["window_id"] not in known)
            if text:
                _append_jsonl(self.ledger_path(pointer), text.encode())

    def _versions(self, name: str) -> list[int]:
        d = self.root / "models" / name
        if not d.is_dir():
            return []
        return sorted(int(m.group(1)) for p in d.iterdir() if p.is_dir() and (m := _VERSION.fullmatch(p.name)))

    def register(self, name: str, gate_dir: Path, card: dict) -> Pointer:
        """Copy a verified gate folder in as the next version of ``name``; return its pointer."""
        verify_folder(gate_dir)
        with self._lock():
            state = self.state()
            pointer = self._register(state, name, gate_dir, card)
            self._write_state(state)
            return pointer

    def _register(self, state: RegistryState, name: str, gate_dir: Path, card: dict) -> Pointer:  # holding the lock
        """Build the version folder (card.json inside, resealed) and record its MANIFEST in ``state``."""
        version = (self._versions(name) or [0])[-1] + 1
        final = self.root / "models" / name / f"v{version}"
        tmp = final.with_name(f".v{version}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copytree(gate_dir, tmp)
            write_json_atomic(tmp / "card.json", {**card, "name": name, "version": version, "registered_at": _now()})
            write_manifest(tmp)  # card.json is sealed too: predict refuses files the manifest does not list
            os.replace(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RegistryError(f"{final}: cannot be written ({exc.strerror or exc}); nothing was registered") from exc
        fsync_dir(final.parent)
        sha = hashlib.sha256((final / MANIFEST).read_bytes()).hexdigest()
        state.versions[_vkey(name, version)] = VersionRecord(manifest_sha256=sha, registered_at=_now())
        return Pointer(name=name, version=version, path=f"models/{name}/v{version}", manifest_sha256=sha)

    def set_production(self, pointer: Pointer | None, action: str, reason: str) -> Pointer | None:
        """Point production at ``pointer`` (or nothing), recording the change in history; the new production."""
        with self._lock():
            state = self.state()
            self._point(state, pointer, action, reason)
            self._write_state(state)
            return state.production

    def _point(self, state: RegistryState, pointer: Pointer | None, action: str, reason: str) -> None:
        before = state.production
        state.production = None if pointer is None else pointer.model_copy(update={"since": _now()})
        state.history.append(Change(at=_now(), action=action, reason=reason, from_=before, to=state.production))

    def ship(self, name: str, gate_dir: Path, card: dict, reason: str, expected: Pointer | None) -> Pointer | None:
        """Register and point production at it, in one locked step, only if production is still
        ``expected`` (what the decision was made against). Returns the new production, or None when
        production changed meanwhile: the caller decides again against the new production."""
        verify_folder(gate_dir)
        with self._lock():
            state = self.state()
            if _key(state.production) != _key(expected):
                return None
            pointer = self._register(state, name, gate_dir, card)
            self._point(state, pointer, "ship", reason)
            self._write_state(state)
            return state.production

    def rollback(self, to: str | None = None) -> Pointer:
        """Return production to version ``to`` ('vN') of its model, or walk back one step.

        Plain rollback goes to the most recent earlier production that has not itself been rolled
        away from and is not marked degraded: repeated rollbacks walk back through history
        (v3 -> v2 -> v1) and never re-deploy the version just rolled away from. Returns the new production."""
        version = parse_version(to) if to is not None else None
        with self._lock():
            state = self.state()
            prod = state.production
            if prod is None:
                raise ConfigError("registry rollback: there is no production model")
            if version is not None:
                known = self._versions(prod.name)
                if version not in known:
                    raise ConfigError(f"registry rollback --to {to}: {prod.name} has versions "
                                      f"{', '.join(f'v{v}' for v in known) or 'none'}")
                target = Pointer(name=prod.name, version=version, path=f"models/{prod.name}/v{version}",
                                 manifest_sha256=state.manifest_of(prod.name, version))
            else:
                target = self._previous(state)
            self._point(state, target, "rollback", f"rollback to {target.label}")
            self._write_state(state)
            return state.production

    @staticmethod
    def _previous(state: RegistryState) -> Pointer:
        rolled_away = {_key(h.from_) for h in state.history if h.action == "rollback" and h.from_}
        skip = rolled_away | {_key(state.production)} | state.degraded_keys()
        earlier = (h.to for h in reversed(state.history) if h.to is not None)
        good = next((p for p in earlier if p.key not in skip), None)
        if good is None:
            raise ConfigError("registry rollback: no earlier production to return to (every earlier one was "
                              "rolled away from or is degraded); use --to vN to choose one")
        return good  # _point stamps its own `since`

    def is_degraded(self, pointer: Pointer | None) -> bool:
        return pointer is not None and pointer.key in self.state().degraded_keys()

    def revert_to_last_good(self, reason: str, mark_degraded: bool = True,
                            expected: Pointer | None = None) -> tuple[Pointer | None, bool] | None:
        """Mark production degraded, then point it at the most recent earlier production that is
        not degraded. Returns (production after, reverted); with no good version left, production
        stays (marked) and ``reverted`` is False: the caller must say so loudly.

        With ``expected`` it is a compare-and-swap: when production is no longer that version
        (a ship landed after it was scored), production is left alone, only ``expected`` (the
        version actually scored) is marked degraded, and None is returned: score the new one."""
        with self._lock():
            state = self.state()
            prod = state.production
            if expected is not None and _key(prod) != _key(expected):
                if mark_degraded and expected.key not in state.degraded_keys():
                    state.degraded.append(Degraded(name=expected.name, version=expected.version, at=_now(),
                                                   reason=reason))
                    self._write_state(state)
                return None
            if prod is None:
                return None, False
            if mark_degraded and prod.key not in state.degraded_keys():
                state.degraded.append(Degraded(name=prod.name, version=prod.version, at=_now(), reason=reason))
            bad = state.degraded_keys()
            earlier = [h.to for h in reversed(state.history) if h.to is not None]
            good = next((p for p in earlier if p.key not in bad), None)
            if good is not None:
                self._point(state, good, "revert", reason)
            self._write_state(state)
        return state.production, good is not None

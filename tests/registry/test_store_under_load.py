"""Registry hardening found by a hostile review (issue 10): each test failed before its fix."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading

import pytest

from moola.core.errors import ConfigError, RegistryBusy, RegistryError
from moola.registry.store import Registry, parse_version


def ship_n(reg, gate_dir, n):
    for _ in range(n):
        reg.ship("baseline", gate_dir, {}, "better", expected=reg.production())


def versions_of(state: dict) -> int:
    """The production version in registry.json's state."""
    return state["production"]["version"]


def test_repeated_rollbacks_walk_back_and_never_ping_pong(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 3)
    assert reg.rollback().version == 2
    assert reg.rollback().version == 1  # before the fix: back to v2 (v1 -> v2 -> v1 ...)
    with pytest.raises(ConfigError, match="no earlier production"):
        reg.rollback()
    assert versions_of(reg.read()) == 1


def test_rollback_skips_degraded_versions(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 3)
    reg.revert_to_last_good("v3 bad")  # -> v2, v3 degraded
    reg.ship("baseline", gate_dir, {}, "v4", expected=reg.production())
    assert reg.rollback().version == 2  # not the degraded v3


@pytest.mark.parametrize("text", ["v01", "v²", "v٣", "2", "v", "v-1", "v1 ", "../v1", "V1", ""])
def test_rollback_to_accepts_only_v_and_ascii_digits(tmp_path, gate_dir, text):
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 2)
    before = reg.path.read_bytes()
    with pytest.raises(ConfigError):
        reg.rollback(to=text)
    assert reg.path.read_bytes() == before


def test_parse_version():
    assert parse_version("v12") == 12
    with pytest.raises(ConfigError, match="expected 'v' followed by a number"):
        parse_version("v01")


def test_rollback_reads_under_the_lock(tmp_path, gate_dir, monkeypatch):
    """A ship that lands while a rollback waits for the lock is not overwritten by stale state. The
    ship is written only once the rollback is waiting for the lock (whatever it read before is read)."""
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 2)
    from filelock import FileLock
    lock = FileLock(str(reg.root / ".registry.lock"))
    lock.acquire()
    out, waiting, real_acquire = {}, threading.Event(), FileLock.acquire

    def acquire(self, *a, **kw):
        if threading.current_thread() is t:
            waiting.set()
        return real_acquire(self, *a, **kw)
    monkeypatch.setattr(FileLock, "acquire", acquire)
    t = threading.Thread(target=lambda: out.setdefault("state", reg.rollback()))
    t.start()
    assert waiting.wait(30)
    # while the rollback waits, a ship lands (written directly, as another process holding the lock would)
    state = reg.state()
    other = Registry(reg.root)
    pointer = other._register(state, "augment", gate_dir, {})
    other._point(state, pointer, "ship", "concurrent")
    other._write_state(state)
    lock.release()
    t.join(30)
    final = reg.read()
    # the rollback saw the concurrent ship: it rolled back from augment v1, and the ship is in history
    assert [h["action"] for h in final["history"]] == ["ship", "ship", "ship", "rollback"]
    assert final["history"][-1]["from"]["name"] == "augment"


@pytest.mark.parametrize("content,match", [
    ("", "empty"), ('{"production": nul', "not valid JSON"), ("[]", "expected a JSON object"),
    ('{"production": null}', "missing key"), ('{"production": 3, "history": []}', "must be an object"),
    # a field of the state damaged (each was a KeyError or a pydantic traceback, read deep in a command)
    ('{"production": {"name": "baseline", "path": "models/baseline/v1"}, "history": []}',
     r"registry.json: production.version: Field required"),
    ('{"production": null, "history": [{"at": "x", "action": "ship", "to": {"name": "b", "version": "two", '
     '"path": "p"}}]}', r"history.0.to.version: Input should be a valid integer"),
    ('{"production": null, "history": [], "versions": {"b/v1": {}}}', r"versions.b/v1.manifest_sha256: Field required"),
    ('{"production": null, "history": [], "degraded": [3]}', r"degraded.0: Input should be a valid dictionary"),
])
def test_damaged_registry_json_is_one_clear_error(tmp_path, content, match):
    reg = Registry(tmp_path)
    reg.path.write_text(content)
    with pytest.raises(RegistryError, match=match) as e:
        reg.read()
    assert str(reg.path) in str(e.value) and e.value.exit_code == 1  # moola's own state: infrastructure


def test_registry_json_a_directory(tmp_path):
    reg = Registry(tmp_path)
    reg.path.mkdir()
    with pytest.raises(RegistryError, match="cannot be read"):
        reg.read()


def test_lock_held_past_timeout_is_registry_busy(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art", lock_timeout=0.2)
    from filelock import FileLock
    reg.root.mkdir(parents=True)
    with FileLock(str(reg.root / ".registry.lock")):
        with pytest.raises(RegistryBusy, match="held by another process"):
            reg.ship("baseline", gate_dir, {}, "x", expected=None)
    assert not reg.path.exists()


def test_write_failing_for_lack_of_space_keeps_old_state_and_no_temp(tmp_path, gate_dir, monkeypatch):
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 1)
    before = reg.path.read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RegistryError, match="free some disk space"):
        reg.rollback(to="v1")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert reg.path.read_bytes() == before
    assert not [p for p in reg.root.iterdir() if p.name.endswith(".tmp")]


def test_ship_records_the_manifest_sha256_and_seals_the_card(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 1)
    state = reg.read()
    folder = reg.folder(reg.production())
    sha = hashlib.sha256((folder / "MANIFEST.sha256").read_bytes()).hexdigest()
    assert state["versions"]["baseline/v1"]["manifest_sha256"] == sha == state["production"]["manifest_sha256"]
    assert "card.json" in (folder / "MANIFEST.sha256").read_text()
    assert reg.expected_manifest(folder) == sha
    assert reg.expected_manifest(gate_dir) is None  # not a registry folder


def test_a_folder_dropped_into_models_by_hand_is_refused(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    import shutil
    shutil.copytree(gate_dir, reg.root / "models" / "baseline" / "v7")
    with pytest.raises(ConfigError, match="not a version it recorded"):
        reg.expected_manifest(reg.root / "models" / "baseline" / "v7")


def test_revert_acts_only_on_the_version_it_scored(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 2)
    scored = reg.production()                  # v2 is scored ...
    ship_n(reg, gate_dir, 1)                   # ... a ship of v3 lands meanwhile ...
    assert reg.revert_to_last_good("v2 degraded", expected=scored) is None  # ... so production is left alone
    state = reg.read()
    assert versions_of(state) == 3 and [d["version"] for d in state["degraded"]] == [2]


def test_registry_json_is_written_back_as_it_was_read(tmp_path, gate_dir):
    """The typed state writes the same JSON: a registry.json made by hand in moola's format, keys
    moola does not know included, reads back equal, and a change appends without altering the rest."""
    reg = Registry(tmp_path / "art")
    ship_n(reg, gate_dir, 2)
    stored = json.loads(reg.path.read_text())
    stored["note"] = "kept"
    stored["history"][0]["by"] = "ops"
    stored["versions"]["baseline/v1"]["signed_by"] = "ops"
    stored["degraded"] = [{"name": "baseline", "version": 1, "at": "2026-01-01T00:00:00Z", "reason": "r"}]
    reg.path.write_text(json.dumps(stored))
    assert reg.read() == stored
    reg.set_production(reg.register("baseline", gate_dir, {}), "ship", "third")
    after = json.loads(reg.path.read_text())
    assert after["history"][:2] == stored["history"] and after["degraded"] == stored["degraded"]
    assert after["note"] == "kept" and after["versions"]["baseline/v1"] == stored["versions"]["baseline/v1"]
    assert set(after["history"][2]) == {"at", "action", "reason", "from", "to"}
    assert after["history"][2]["from"] == stored["production"] and after["production"]["version"] == 3

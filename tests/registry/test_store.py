"""The registry: versions, production pointer, rollback, and crash safety under SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from moola.core.errors import ConfigError
from moola.registry.store import Registry


def test_register_ship_and_rollback(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    assert reg.read() == {"production": None, "history": [], "degraded": [], "versions": {}}
    v1 = reg.register("baseline", gate_dir, {"metrics": {"f1_weighted": 0.7}})
    v2 = reg.register("baseline", gate_dir, {"metrics": {"f1_weighted": 0.8}})
    assert (v1.version, v2.version) == (1, 2)
    assert json.loads((tmp_path / "art/models/baseline/v2/card.json").read_text())["version"] == 2
    reg.set_production(v1, "ship", "first")
    reg.set_production(v2, "ship", "better")
    assert reg.read()["production"]["version"] == 2
    assert reg.rollback().version == 1
    assert reg.rollback(to="v2").version == 2 == reg.production().version
    assert [h["action"] for h in reg.read()["history"]] == ["ship", "ship", "rollback", "rollback"]
    # pointers are relative to the registry root: they work from any working directory
    assert reg.read()["production"]["path"] == "models/baseline/v2"
    assert reg.folder(reg.production()) == tmp_path / "art/models/baseline/v2"
    with pytest.raises(ConfigError, match="has versions v1, v2"):
        reg.rollback(to="v9")


def test_rollback_without_production_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no production model"):
        Registry(tmp_path).rollback()


def test_ship_is_a_compare_and_swap_on_production(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    first = reg.ship("baseline", gate_dir, {}, "first", expected=None)
    assert first.version == 1 and first == reg.production()
    state = reg.read()
    # a decision made against "no production" is stale now: nothing is registered or changed
    assert reg.ship("baseline", gate_dir, {}, "stale", expected=None) is None
    assert reg.read() == state and not (tmp_path / "art/models/baseline/v2").exists()
    assert reg.ship("augment", gate_dir, {}, "better", expected=first).key == ("augment", 1)
    assert [(h["from"] or {}).get("name") for h in reg.read()["history"]] == [None, "baseline"]


def test_revert_to_last_good_skips_degraded_versions(tmp_path, gate_dir):
    reg = Registry(tmp_path / "art")
    v1, v2, v3 = (reg.register("baseline", gate_dir, {}) for _ in range(3))
    for v in (v1, v2, v3):
        reg.set_production(v, "ship", "better")
    prod, reverted = reg.revert_to_last_good("v3 fell below the floor")
    assert reverted and prod.version == 2 == reg.production().version
    assert [(d["version"], d["reason"]) for d in reg.read()["degraded"]] == [(3, "v3 fell below the floor")]
    assert reg.is_degraded(v3) and not reg.is_degraded(v2)
    # v2 degrades too: back to v1, never forward to the degraded v3
    prod, reverted = reg.revert_to_last_good("v2 degenerate")
    assert reverted and prod.version == 1
    # nothing good left: production stays on v1, marked, and the caller is told
    prod, reverted = reg.revert_to_last_good("v1 degenerate")
    state = reg.read()
    assert not reverted and prod.version == 1 and reg.is_degraded(v1)
    assert [h["action"] for h in state["history"]] == ["ship", "ship", "ship", "revert", "revert"]
    assert state["history"][-1]["from"]["version"] == 2 and state["history"][-1]["to"]["version"] == 1


def test_revert_without_production_changes_nothing(tmp_path):
    reg = Registry(tmp_path / "art")
    prod, reverted = reg.revert_to_last_good("nightly")
    assert not reverted and prod is None and not (tmp_path / "art" / "registry.json").exists()


WORKER = """
import sys, json
from pathlib import Path
from moola.registry.store import Registry
reg = Registry(sys.argv[1])
gate = Path(sys.argv[2])
i = 0
while True:
    p = reg.register("m", gate, {"i": i})
    reg.set_production(p, "ship", f"step {i}")
    reg.append({"decision": {"action": "ship", "i": i, "pad": "x" * 2000}})
    i += 1
"""


def check_consistent(root):
    state = json.loads((root / "registry.json").read_text()) if (root / "registry.json").exists() else None
    if state and state["production"]:
        card = root / "models" / "m" / f"v{state['production']['version']}" / "card.json"
        assert json.loads(card.read_text())["version"] == state["production"]["version"]
    if (root / "experiment_results.jsonl").exists():
        data = (root / "experiment_results.jsonl").read_bytes()
        assert data == b"" or data.endswith(b"\n")
        for line in data.splitlines():
            json.loads(line)
    for p in (root / "models" / "m").glob("v*") if (root / "models" / "m").exists() else []:
        assert (p / "card.json").is_file(), p  # no half-built version under a final name


def test_sigkill_at_many_points_leaves_a_valid_registry(tmp_path, gate_dir):
    root = tmp_path / "art"
    jsonl = root / "experiment_results.jsonl"
    for k in range(15):
        before = jsonl.stat().st_size if jsonl.exists() else 0
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(gate_dir)])
        deadline = time.monotonic() + 60
        while (not jsonl.exists() or jsonl.stat().st_size == before) and time.monotonic() < deadline:
            time.sleep(0.005)  # wait until this worker is inside its loop
        time.sleep(0.013 * k)  # then kill at a different point of the loop each time
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check_consistent(root)
    assert len(json.loads((root / "registry.json").read_text())["history"]) > 15


def test_two_writers_at_once_keep_registry_and_jsonl_intact(tmp_path, gate_dir):
    root = tmp_path / "art"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(gate_dir)]) for _ in range(2)]
    jsonl = root / "experiment_results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not jsonl.exists() or jsonl.read_bytes().count(b"\n") < 6):
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    check_consistent(root)
    state = json.loads((root / "registry.json").read_text())
    versions = sorted(int(p.name[1:]) for p in (root / "models" / "m").glob("v*"))
    assert versions == list(range(1, len(versions) + 1))  # the lock kept version numbers unique
    assert len(state["history"]) >= 2

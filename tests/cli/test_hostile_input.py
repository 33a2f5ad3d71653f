"""The CLI probed as a careless or hostile user would (issue 10): every case exits 2 (usage or
invalid input) or 1 (integrity or internal), says what is wrong in a clear line, prints no
traceback, and leaves every file byte-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from moola.cli.main import main
from moola.core.seal import write_manifest


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def shipped(gate_dirs, tmp_path_factory):
    """A registry with baseline v1 and v2 shipped (real gate folder, real ship)."""
    from moola.gates.result import read_result
    from moola.registry.card import card_for
    from moola.registry.store import Registry
    art = tmp_path_factory.mktemp("hostile") / "art"
    reg = Registry(art)
    result = read_result(gate_dirs["baseline"])
    for _ in range(2):
        before = reg.production()
        reg.ship("baseline", gate_dirs["baseline"], card_for(result, before), "test", expected=before)
    return art


@pytest.fixture
def world(shipped, gate_dirs, sample_dir, tmp_path, monkeypatch):
    art = tmp_path / "art"
    shutil.copytree(shipped, art)
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(art))
    monkeypatch.setenv("MOOLA_RUNNER", "here")
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    shutil.copytree(gate_dirs["baseline"], model)
    return {"art": art, "data": sample_dir / "train.parquet", "model": model, "tmp": tmp_path,
            "prod": art / "models" / "baseline" / "v2"}


def edit_json(path: Path, fn, reseal: Path | None = None):
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))
    if reseal is not None:
        write_manifest(reseal)


def hold_lock(w):
    from filelock import FileLock
    lock = FileLock(str(w["art"] / ".registry.lock"))
    lock.acquire()
    w["lock"] = lock


def gate(w, *extra, gate_name="validate"):
    return ["gate", "run", gate_name, "--data", str(w["data"]), "--device", "cpu", *extra]


def foreign(w):
    (w["tmp"] / "mine").mkdir()
    (w["tmp"] / "mine" / "notes.txt").write_text("mine")


def del_key(key):
    return lambda o: o.pop(key)


# id, setup(world), argv(world), expected exit code, a phrase the message must contain
CASES = [
    ("rollback-leading-zero", None, lambda w: ["registry", "rollback", "--to", "v01"], 2, "expected 'v'"),
    ("rollback-superscript", None, lambda w: ["registry", "rollback", "--to", "v²"], 2, "expected 'v'"),
    ("rollback-arabic-digit", None, lambda w: ["registry", "rollback", "--to", "v٣"], 2, "expected 'v'"),
    ("rollback-path", None, lambda w: ["registry", "rollback", "--to", "../../etc"], 2, "expected 'v'"),
    ("rollback-unknown-version", None, lambda w: ["registry", "rollback", "--to", "v9"], 2, "has versions v1, v2"),
    # the registry's own files damaged: exit 1 (infrastructure: moola's state, not the user's input)
    ("registry-truncated", lambda w: (w["art"] / "registry.json").write_text(
        (w["art"] / "registry.json").read_text()[:40]), lambda w: ["registry", "show"], 1, "not valid JSON"),
    ("registry-empty", lambda w: (w["art"] / "registry.json").write_text(""), lambda w: ["registry", "show"], 1,
     "empty"),
    ("registry-a-list", lambda w: (w["art"] / "registry.json").write_text("[]"), lambda w: ["registry", "history"],
     1, "expected a JSON object"),
    ("registry-no-history", lambda w: edit_json(w["art"] / "registry.json", del_key("history")),
     lambda w: ["registry", "rollback"], 1, "missing key(s) history"),
    ("registry-pointer-no-version", lambda w: edit_json(w["art"] / "registry.json",
                                                        lambda o: o["production"].pop("version")),
     lambda w: ["registry", "rollback"], 1, "production.version: field required"),
    ("registry-a-directory", lambda w: ((w["art"] / "registry.json").unlink(), (w["art"] / "registry.json").mkdir()),
     lambda w: ["registry", "show"], 1, "cannot be read"),
    ("registry-lock-held", hold_lock, lambda w: ["registry", "rollback"], 1, "held by another process"),
    ("registry-bad-lock-timeout", lambda w: None, lambda w: ["registry", "show"], 2, "moola_registry_lock_timeout"),
    ("predict-no-production", lambda w: shutil.rmtree(w["art"]), lambda w: ["predict", str(w["data"]), "--out",
     "p.parquet"], 2, "no production model"),
    ("predict-no-manifest", lambda w: (w["model"] / "MANIFEST.sha256").unlink(),
     lambda w: ["predict", str(w["data"]), "--model", str(w["model"]), "--out", "p.parquet"], 1, "no MANIFEST"),
    ("predict-model-json-corrupt", lambda w: ((w["model"] / "model.json").write_text("{nope"),
                                             write_manifest(w["model"])),
     lambda w: ["predict", str(w["data"]), "--model", str(w["model"]), "--out", "p.parquet"], 1, "not valid JSON"),
    ("predict-model-json-missing-key", lambda w: edit_json(w["model"] / "model.json", del_key("normalizer"),
                                                           w["model"]),
     lambda w: ["predict", str(w["data"]), "--model", str(w["model"]), "--out", "p.parquet"], 1, "normalizer"),
    ("predict-relabelled-production", lambda w: edit_json(w["prod"] / "model.json",
                                                          lambda o: o["classes"].reverse(), w["prod"]),
     lambda w: ["predict", str(w["data"]), "--out", "p.parquet"], 1, "the registry recorded"),
    ("predict-relabelled-version-by-path", lambda w: edit_json(w["prod"] / "model.json",
                                                               lambda o: o["classes"].reverse(), w["prod"]),
     lambda w: ["predict", str(w["data"]), "--model", str(w["prod"]), "--out", "p.parquet"], 1,
     "the registry recorded"),
    ("predict-unlisted-file", lambda w: (w["model"] / "extra.pkl").write_bytes(b"\x80\x04N."),
     lambda w: ["predict", str(w["data"]), "--model", str(w["model"]), "--out", "p.parquet"], 1,
     "not listed in MANIFEST"),
    ("predict-tampered-weights", lambda w: (w["model"] / "model.safetensors").write_bytes(b"x"),
     lambda w: ["predict", str(w["data"]), "--model", str(w["model"]), "--out", "p.parquet"], 1, "does not match"),
    ("predict-out-is-a-folder", lambda w: (w["tmp"] / "outdir").mkdir(),
     lambda w: ["predict", str(w["data"]), "--out", "outdir"], 2, "is a folder"),
    ("predict-model-is-a-file", None, lambda w: ["predict", str(w["data"]), "--model", str(w["data"]), "--out",
                                                 "p.parquet"], 2, "is a file"),
    ("predict-model-nowhere", None, lambda w: ["predict", str(w["data"]), "--model", "nowhere", "--out",
                                               "p.parquet"], 2, "no such folder"),
    ("predict-data-missing", None, lambda w: ["predict", "missing.parquet", "--out", "p.parquet"], 2,
     "file not found"),
    ("compare-n-boot-0", None, lambda w: ["compare", str(w["model"]), str(w["model"]), "--n-boot", "0"], 2,
     "--n-boot 0"),
    ("compare-not-predictions", None, lambda w: ["compare", str(w["data"]), str(w["data"])], 2, "missing column"),
    ("compare-missing", None, lambda w: ["compare", "a.parquet", "b.parquet"], 2, "cannot read predictions"),
    ("sample-data-zero", None, lambda w: ["sample-data", "s", "--n-labeled", "0"], 2, "--n-labeled 0"),
    ("sample-data-negative-pool", None, lambda w: ["sample-data", "s", "--n-unlabeled", "-5"], 2, "--n-unlabeled"),
    ("gate-out-foreign-folder", foreign, lambda w: gate(w, "--out", "mine"), 2, "not a gate's output"),
    ("gate-out-cwd", None, lambda w: gate(w, "--out", "."), 2, "working directory"),
    ("gate-out-parent", None, lambda w: gate(w, "--out", ".."), 2, "working directory"),
    ("gate-out-a-file", None, lambda w: gate(w, "--out", str(w["data"])), 2, "not a folder"),
    ("gate-val-size-zero", None, lambda w: gate(w, "--out", "o", "--val-size", "0"), 2, "--val-size"),
    ("gate-val-size-text", None, lambda w: gate(w, "--out", "o", "--val-size", "abc"), 2, "--val-size"),
    ("gate-folds-zero", None, lambda w: gate(w, "--out", "o", "--folds", "0"), 2, "--folds"),
    ("gate-bar-seconds-zero", None, lambda w: gate(w, "--out", "o", "--bar-seconds", "0"), 2, "--bar-seconds"),
    ("gate-data-missing", None, lambda w: ["gate", "run", "baseline", "--data", "none.parquet", "--out", "o"], 2,
     "file not found"),
    ("gate-data-not-parquet", lambda w: (w["tmp"] / "x.parquet").write_text("window_id,label\n"),
     lambda w: ["gate", "run", "baseline", "--data", "x.parquet", "--out", "o"], 2, "x.parquet"),
    ("gate-config-missing", None, lambda w: gate(w, "--out", "o", "--config", "none.json"), 2,
     "cannot read the config"),
    ("gate-config-bad-key", lambda w: (w["tmp"] / "c.json").write_text('{"fit": {"epoch": 3}}'),
     lambda w: gate(w, "--out", "o", "--config", "c.json"), 2, "fit.epoch"),
    ("gate-preset-unknown", None, lambda w: gate(w, "--out", "o", "--preset", "turbo"), 2, "--preset"),
    ("gate-runner-unknown", None, lambda w: gate(w, "--out", "o", "--runner", "gpu"), 2, "runner"),
    ("gate-encoder-nowhere", None, lambda w: gate(w, "--out", "o", "--encoder", "nowhere", gate_name="transfer"), 2,
     "--encoder nowhere"),
    ("gate-unknown", None, lambda w: ["gate", "run", "gate6", "--data", "x", "--out", "o"], 2, "invalid choice"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_clear_error_and_changes_nothing(world, case, capsys, monkeypatch):
    name, setup, argv, expected, phrase = case
    if setup is not None:
        setup(world)
    if name == "registry-bad-lock-timeout":
        monkeypatch.setenv("MOOLA_REGISTRY_LOCK_TIMEOUT", "soon")
    if name == "registry-lock-held":
        monkeypatch.setenv("MOOLA_REGISTRY_LOCK_TIMEOUT", "0.2")
    before = tree(world["tmp"])
    capsys.readouterr()
    try:
        code = main(argv(world))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    finally:
        if "lock" in world:
            world["lock"].release()
    err = capsys.readouterr().err
    assert code == expected, err
    assert "Traceback" not in err
    assert phrase.lower() in err.lower(), err
    assert tree(world["tmp"]) == before

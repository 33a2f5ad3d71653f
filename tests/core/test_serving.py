"""Ship only what serves (issue 10): the candidate loaded in a fresh process, as `moola predict`
loads it, must reproduce the gate's own validation predictions."""

from __future__ import annotations

import json
import shutil

from moola.modelfile import write_manifest
from moola.serving import check_serves


def test_a_real_gate_folder_serves(gate_dirs, sample_dir):
    c = check_serves(gate_dirs["baseline"], sample_dir / "train.parquet")
    assert c.ok, c.detail
    assert "on 20 validation windows" in c.detail


def test_a_tampered_normaliser_is_refused(gate_dirs, sample_dir, tmp_path):
    folder = tmp_path / "baseline"
    shutil.copytree(gate_dirs["baseline"], folder)
    cfg = json.loads((folder / "model.json").read_text())
    cfg["normalizer"]["scale"] *= 3.0  # loads fine, predicts differently
    (folder / "model.json").write_text(json.dumps(cfg))
    write_manifest(folder)  # integrity alone cannot catch it: the manifest was updated too
    c = check_serves(folder, sample_dir / "train.parquet")
    assert not c.ok and "differ from the gate's on 20 validation windows" in c.detail


def test_a_folder_that_does_not_load_is_refused(gate_dirs, sample_dir, tmp_path):
    folder = tmp_path / "baseline"
    shutil.copytree(gate_dirs["baseline"], folder)
    (folder / "model.safetensors").unlink()
    write_manifest(folder)
    c = check_serves(folder, sample_dir / "train.parquet")
    assert not c.ok and "failed in a fresh process" in c.detail

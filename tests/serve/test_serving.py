"""Ship only what serves (issue 10): the candidate loaded in a fresh process, as `moola predict`
loads it, must reproduce the gate's own validation predictions."""

from __future__ import annotations

import json
import shutil

from moola.core.seal import write_manifest
from moola.serve.check import check_serves


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


# -- the rule a GPU-trained candidate is judged by (moola/serve/check.py: compare) --------------------
def _frames(p_gate, p_served, classes=("consolidation", "retracement")):
    import numpy as np
    import pandas as pd

    def frame(p):
        p = np.asarray(p, dtype=float)
        out = pd.DataFrame({"window_id": [f"w{i}" for i in range(len(p))],
                            "predicted": [classes[i] for i in p.argmax(axis=1)]})
        for k, c in enumerate(classes):
            out[f"proba_{c}"] = p[:, k]
        return out
    return frame(p_gate), frame(p_served)


def test_rounding_as_a_gpu_in_full_fp32_serves_tf32_sized_differences_do_not():
    import numpy as np

    from moola.serve.check import TOLERANCE, compare
    rng = np.random.default_rng(3)
    a = rng.uniform(0.05, 0.95, 40)
    p = np.stack([a, 1 - a], axis=1)
    assert TOLERANCE == 1e-4  # the documented figure (README "Ship only what serves")
    assert compare(*_frames(p, p + rng.normal(0, 3e-7, p.shape))).ok       # fp32 rounding order
    got = compare(*_frames(p, p + np.array([1e-3, -1e-3])))               # TF32-sized
    assert not got.ok and "max |probability difference| 1.00e-03" in got.detail


def test_a_class_flips_only_where_the_gate_itself_had_a_tie():
    import numpy as np

    from moola.serve.check import compare
    p = np.array([[0.7, 0.3], [0.50002, 0.49998], [0.2, 0.8]])
    q = p.copy()
    q[1] = [0.49998, 0.50002]   # within 1e-4 at a tie: the argmax may go either way
    assert compare(*_frames(p, q)).ok
    q2 = p.copy()
    q2[0] = [0.69995, 0.30005]
    gate, served = _frames(p, q2)
    served.loc[0, "predicted"] = "retracement"  # a class changed away from any tie
    got = compare(gate, served)
    assert not got.ok and "1 class(es) changed" in got.detail


def test_an_lstm_predicted_in_float64_is_judged_the_same_model():
    """The same weights computed in another precision order (a stand-in for a GPU's fp32, which sums
    in another order): the rule accepts it."""
    import torch

    from moola.models.lstm import EnhancedSimpleLSTM, ModelConfig
    from moola.serve.check import compare
    from moola.train.fit import predict_proba
    torch.manual_seed(1)
    m = EnhancedSimpleLSTM(4, 2, ModelConfig(hidden=16, stride=1))
    X = torch.randn(32, 105, 4)
    p32 = predict_proba(m, X, torch.device("cpu")).numpy()
    with torch.no_grad():
        p64 = torch.softmax(m.double().eval()(X.double()), 1).numpy()
    assert compare(*_frames(p32, p64)).ok

"""Real training on the sample data: each gate's folder, verdict and exit code."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from moola.cli.main import main
from moola.core.errors import ModelFileError
from moola.core.seal import verify_folder
from moola.evaluation.metrics import METRIC_KEYS
from moola.evaluation.paired import PairedEvidence
from moola.gates.result import read_result
from moola.models.files import load_pickle_verified
from tests.conftest import gate


def test_every_gate_writes_a_complete_verified_folder(gate_dirs):
    for name in ("baseline", "minirocket", "pretrain", "transfer", "augment"):
        folder = gate_dirs[name]
        entries = verify_folder(folder)
        assert {"result.json", "data_manifest.json", "predictions.parquet"} <= set(entries), name
        res = read_result(folder)
        assert res.gate == name
        assert gate_dirs["codes"][name] == (0 if res.status == "passed" else 3)
        for key in METRIC_KEYS:
            assert getattr(res.metrics, key) is not None, (name, key)
            assert getattr(res.majority_baseline, key) is not None
        assert res.environment["torch"] and res.environment["device"] == "cpu"
        assert res.config["seed"] == 17 and res.data["train"] == 78 and res.data["val"] == 20
        assert len(res.data_manifest_sha256) == 64
        preds = pd.read_parquet(folder / "predictions.parquet")
        assert list(preds.columns) == ["window_id", "fold", "label", "predicted", "proba_consolidation",
                                       "proba_retracement"]
        assert len(preds) == 20 and preds[["proba_consolidation", "proba_retracement"]].sum(axis=1).round(6).eq(1).all()


def test_baseline_trains_for_real(gate_dirs):
    res = read_result(gate_dirs["baseline"])
    fit = res.details["fit"]
    assert fit["final_train_loss"] < 0.9 * fit["first_train_loss"]  # the loss fell (32 units on CPU: ~0.81x)
    assert res.degenerate is False and res.status == "passed"
    assert res.metrics.f1_weighted > res.majority_baseline.f1_weighted
    assert len(res.metrics.predicted_classes) == 2
    assert (gate_dirs["baseline"] / "model.safetensors").is_file()
    cfg = json.loads((gate_dirs["baseline"] / "model.json").read_text())
    assert cfg["classes"] == ["consolidation", "retracement"] and cfg["normalizer"]["method"] == "ohlc_window"


def test_minirocket_control_records_both_f1_and_a_verdict(gate_dirs):
    res = read_result(gate_dirs["minirocket"])
    base = read_result(gate_dirs["baseline"])
    c = res.comparison
    assert c.baseline_f1 == base.pooled.f1_weighted and c.f1 == res.pooled.f1_weighted
    e = c.evidence  # paired, on the same windows: the points are the two gates' own pooled F1
    assert e.f1_weighted.a == pytest.approx(c.baseline_f1) and e.f1_weighted.b == pytest.approx(c.f1)
    assert e.n == res.pooled.n == base.pooled.n
    low = e.f1_weighted.ci_low
    assert c.verdict == ("control_wins" if low > 0 else "within_noise" if c.f1 >= c.baseline_f1
                         else "baseline_wins")
    assert (res.status == "failed") == (c.verdict == "control_wins" or res.degenerate)
    sha = res.model_files["minirocket.pkl"]
    model = load_pickle_verified(gate_dirs["minirocket"] / "minirocket.pkl", sha)
    assert model.classes == ["consolidation", "retracement"]


def test_tampered_pickle_is_refused(gate_dirs, tmp_path):
    res = read_result(gate_dirs["minirocket"])
    bad = tmp_path / "minirocket.pkl"
    bad.write_bytes((gate_dirs["minirocket"] / "minirocket.pkl").read_bytes() + b"\x00")
    with pytest.raises(ModelFileError, match="refusing to unpickle"):
        load_pickle_verified(bad, res.model_files["minirocket.pkl"])


def test_pretrain_writes_an_encoder_and_an_honest_probe(gate_dirs):
    res = read_result(gate_dirs["pretrain"])
    assert (gate_dirs["pretrain"] / "encoder.safetensors").is_file()
    enc = json.loads((gate_dirs["pretrain"] / "encoder.json").read_text())
    # pretrained at the classifier's width (the CPU budget's 32 units), so transfer is layer-matched
    assert enc["num_layers"] == 1 and enc["hidden"] == res.config["model"]["hidden"] == 32 and enc["windows"] == 300
    assert res.details["windows"] == 300 and res.details["excluded_windows"] == 0
    assert res.status == ("failed" if res.degenerate else "passed")


def test_transfer_is_layer_matched_with_a_full_encoder_proof(gate_dirs):
    res = read_result(gate_dirs["transfer"])
    proof = res.details["load_proof"]
    assert proof["encoder_tensors"] == 8 and proof["matched"] == 8 and proof["ratio"] == 1.0  # 4 tensors x 2 directions
    assert proof["unexpected_keys"] == [] and proof["shape_mismatches"] == [] and proof["passed"]
    assert res.details["model"]["num_layers"] == 1  # the encoder's depth (PretrainConfig.num_layers)
    assert res.comparison.baseline_f1 == read_result(gate_dirs["baseline"]).metrics.f1_weighted
    # the classifier sees the input steps the encoder was pretrained on (105 bars -> stride 2, gain 3)
    enc = json.loads((gate_dirs["pretrain"] / "encoder.json").read_text())
    assert (enc["stride"], enc["input_gain"]) == (2, 3.0)
    assert (res.details["model"]["stride"], res.details["model"]["input_gain"]) == (2, 3.0)
    assert res.degenerate is False and res.metrics.f1_weighted > res.majority_baseline.f1_weighted


def test_augment_is_train_only_and_counted(gate_dirs):
    res = read_result(gate_dirs["augment"])
    aug = res.details["augmentation"]
    fit = res.details["fit"]
    train_rows = 78 - fit["inner_val_size"]
    assert aug["samples_seen"] == train_rows * fit["epochs_run"]
    assert set(aug["per_transform"]) == {"jitter", "scaling", "magnitude_warp", "time_warp"}
    for n in aug["per_transform"].values():
        assert 0.3 * aug["samples_seen"] < n < 0.7 * aug["samples_seen"]  # prob 0.5, per sample


def test_seed_smoke_preset_is_degenerate_and_refused(sample_dir, tmp_path, capsys):
    code = gate("baseline", sample_dir, tmp_path / "smoke", "--preset", "seed-smoke")
    out = capsys.readouterr().out
    res = read_result(tmp_path / "smoke")
    assert code == 3 and res.status == "failed" and res.degenerate is True
    assert res.details["fit"]["steps"] == 3  # 3 epochs at batch 512 on 78 windows
    assert res.config["fit"]["batch_size"] == 512 and res.config["normalize"] == "none"
    assert "degenerate" in out


def test_invalid_data_exits_2_and_writes_nothing_but_the_manifest(sample_frame, write_frame, tmp_path, capsys):
    df = sample_frame.drop(columns=["label"])
    code = main(["gate", "run", "baseline", "--data", str(write_frame(df)), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "missing required column 'label'" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "result.json").exists()


def test_validate_gate_writes_result(sample_dir, tmp_path):
    assert gate("validate", sample_dir, tmp_path / "v") == 0
    res = read_result(tmp_path / "v")
    assert res.gate_number == 0 and res.status == "passed" and res.data["train"] == 78
    verify_folder(tmp_path / "v")


def test_transfer_needs_an_encoder(sample_dir, tmp_path, capsys):
    assert gate("transfer", sample_dir, tmp_path / "t") == 2
    assert "needs --encoder" in capsys.readouterr().err


def test_compare_cli(gate_dirs, capsys):
    assert main(["compare", str(gate_dirs["baseline"]), str(gate_dirs["minirocket"]), "--n-boot", "300"]) == 0
    out = PairedEvidence.model_validate(json.loads(capsys.readouterr().out))  # the schema, printed whole
    f1 = out.f1_weighted
    assert out.n == 20 and f1.ci_low <= f1.diff <= f1.ci_high
    assert f1.a == read_result(gate_dirs["baseline"]).metrics.f1_weighted
    assert f1.b == read_result(gate_dirs["minirocket"]).metrics.f1_weighted
    assert 0 <= out.mcnemar.p <= 1
    assert 0 < out.p_sign_flip <= 1 and out.detectable.f1_weighted.windows == 20
    assert out.detectable.f1_weighted.windows_for_gain >= 20  # what a 0.05 gain would need


def test_registry_cli_and_predict_with_the_shipped_model(gate_dirs, sample_dir, tmp_path, capsys, monkeypatch):
    from moola.registry.store import Registry
    monkeypatch.setenv("MOOLA_ARTIFACTS", str(tmp_path / "art"))
    assert main(["registry", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["production"] is None
    assert main(["predict", str(sample_dir / "train.parquet"), "--out", str(tmp_path / "p.parquet")]) == 2
    assert "no production model yet" in capsys.readouterr().err
    reg = Registry(tmp_path / "art")
    reg.set_production(reg.register("baseline", gate_dirs["baseline"], {}), "ship", "test")
    assert main(["predict", str(sample_dir / "train.parquet"), "--out", str(tmp_path / "p.parquet")]) == 0
    preds = pd.read_parquet(tmp_path / "p.parquet")
    val = pd.read_parquet(gate_dirs["baseline"] / "predictions.parquet")
    merged = val.merge(preds, on="window_id", suffixes=("_gate", "_pred"))
    assert len(preds) == 98 and len(merged) == 20
    assert (merged["predicted_gate"] == merged["predicted_pred"]).all()  # the same model, the same answers
    capsys.readouterr()
    assert main(["registry", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["production"]["name"] == "baseline"

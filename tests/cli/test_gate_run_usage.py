"""Wrong folders and options on the command line: exit 2, one line naming the option, no traceback."""

from __future__ import annotations

import pytest

from moola.cli.main import main


@pytest.mark.parametrize("extra,expected", [
    (["transfer", "--encoder", "{missing}"], "--encoder {missing}: no such folder (expected the output folder of gate pretrain)"),
    (["transfer", "--encoder", "{empty}"], "--encoder {empty}: no encoder.json there"),
    (["minirocket", "--baseline", "{missing}"], "--baseline {missing}: no such folder (expected the output folder of gate baseline)"),
    (["augment", "--baseline", "{empty}"], "--baseline {empty}: no result.json there"),
])
def test_gate_folder_options_are_checked_first(capsys, sample_dir, tmp_path, extra, expected):
    paths = {"missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty")}
    (tmp_path / "empty").mkdir()
    gate, *opts = [x.format(**paths) for x in extra]
    code = main(["gate", "run", gate, "--data", str(sample_dir / "train.parquet"), "--out", str(tmp_path / "out"),
                 "--device", "cpu", *opts])
    err = capsys.readouterr().err
    assert code == 2 and expected.format(**paths) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing ran


@pytest.mark.parametrize("model,expected", [
    ("{missing}", "--model {missing}: no such folder"),
    ("{empty}", "--model {empty}: no model.json there"),
])
def test_predict_with_a_wrong_model_folder(capsys, sample_dir, tmp_path, model, expected):
    paths = {"missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty")}
    (tmp_path / "empty").mkdir()
    code = main(["predict", str(sample_dir / "train.parquet"), "--model", model.format(**paths),
                 "--out", str(tmp_path / "p.parquet")])
    err = capsys.readouterr().err
    assert code == 2 and expected.format(**paths) in err and "Traceback" not in err
    assert not (tmp_path / "p.parquet").exists()


def test_predict_refuses_a_tampered_model_folder(capsys, gate_dirs, sample_dir, tmp_path):
    import shutil
    folder = tmp_path / "model"
    shutil.copytree(gate_dirs["baseline"], folder)
    (folder / "model.json").write_text((folder / "model.json").read_text().replace('"hidden"', '"hidden" '))
    code = main(["predict", str(sample_dir / "train.parquet"), "--model", str(folder), "--out", str(tmp_path / "p.parquet")])
    err = capsys.readouterr().err
    assert code == 1 and "model.json: sha256" in err and "does not match MANIFEST.sha256" in err
    assert not (tmp_path / "p.parquet").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_retry_for_that_would_never_end_is_refused(capsys, sample_dir, tmp_path, value):
    """`--retry-for nan` retried forever (every comparison with nan is false)."""
    code = main(["gate", "run", "validate", "--data", str(sample_dir / "train.parquet"), "--out",
                 str(tmp_path / "out"), "--runner", "local", "--retry-for", value])
    err = capsys.readouterr().err
    assert code == 2 and f"--retry-for {float(value)}: expected 0 or more seconds" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_an_ssh_port_out_of_range_is_a_config_error_naming_it(capsys, sample_dir, tmp_path, monkeypatch):
    """MOOLA_SSH_PORT=99999 wrapped around (to 34463) instead of being refused."""
    monkeypatch.setenv("MOOLA_SSH_PORT", "99999")
    monkeypatch.setenv("MOOLA_SSH_HOST", "127.0.0.1")
    code = main(["gate", "run", "validate", "--data", str(sample_dir / "train.parquet"), "--out",
                 str(tmp_path / "out"), "--runner", "ssh"])
    err = capsys.readouterr().err
    assert code == 2 and "moola_ssh_port" in err.lower() and "65535" in err and "Traceback" not in err


@pytest.mark.parametrize("extra,name", [(["--seed", str(2**64)], "seed"), (["--bar-seconds", str(10**20)], "bar-seconds"),
                                        (["--val-size", "nan"], "val-size")])
def test_numbers_beyond_what_the_libraries_take_are_one_line_errors(capsys, sample_dir, tmp_path, extra, name):
    """A seed past 2**63 reached torch.manual_seed as an overflow traceback, a bar length past int64
    numpy's as another; --val-size nan went through."""
    code = main(["gate", "run", "baseline", "--data", str(sample_dir / "train.parquet"), "--out", str(tmp_path / "out"),
                 "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert code == 2 and name.replace("-", "_") in err.replace("-", "_") and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()

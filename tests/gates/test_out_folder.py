"""A gate writes a fresh folder and renames it into place (issue 10): the user's files at --out are
never replaced or sealed into a MANIFEST, and a gate that stops half-way leaves nothing."""

from __future__ import annotations

import numpy as np

from moola.cli.main import main
from moola.core.seal import verify_folder
from tests.conftest import frame_from


def validate(data, out, *extra):
    return main(["gate", "run", "validate", "--data", str(data), "--out", str(out), "--device", "cpu", *extra])


def test_existing_folder_with_other_files_is_refused(sample_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "id_ed25519").write_text("secret")
    assert validate(sample_dir / "train.parquet", out) == 2
    assert "not a gate's output" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["id_ed25519"]


def test_existing_file_is_refused(sample_dir, tmp_path, capsys):
    out = tmp_path / "f"
    out.write_text("mine")
    assert validate(sample_dir / "train.parquet", out) == 2
    assert "is not a folder" in capsys.readouterr().err and out.read_text() == "mine"


def test_working_directory_is_refused(sample_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").write_text("k")
    assert validate(sample_dir / "train.parquet", ".") == 2
    assert (tmp_path / "keep").read_text() == "k"


def test_earlier_gate_folder_is_replaced_and_nothing_foreign_is_sealed(sample_dir, tmp_path):
    out = tmp_path / "o"
    assert validate(sample_dir / "train.parquet", out) == 0
    assert validate(sample_dir / "train.parquet", out) == 0
    entries = verify_folder(out)  # strict: every file listed, none extra
    assert "result.json" in entries and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


def test_empty_folder_is_fine(sample_dir, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert validate(sample_dir / "train.parquet", out) == 0 and (out / "result.json").is_file()


def test_windows_too_long_are_refused_by_gate0_before_training(sample_frame, write_frame, tmp_path, capsys):
    """T = 100,000 passed Gate 0 and then tried to allocate 1.28 TB; now Gate 0 refuses long windows
    (T = 20,000 here, to keep the test quick: attention alone would need ~150 GB)."""
    from moola.data.sample import make_sample
    lab, _ = make_sample(seed=3, n_labeled=24, n_unlabeled=0)
    long = np.repeat(lab["X"], 200, axis=1)[:, :20_000]  # (24, 20000, 4), OHLC-consistent
    # windows spaced 100 days apart, so that none is purged for reaching into validation
    starts = np.datetime64("2020-01-01T00:00") + np.arange(24) * np.timedelta64(100, "D")
    data = write_frame(frame_from({**lab, "X": long, "starts": starts}))
    out = tmp_path / "b"
    assert main(["gate", "run", "baseline", "--data", str(data), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "need about" in err and "the limit is 16 GB" in err and "max_memory_gb" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]
    # Gate 0 itself says the same, as a failed result
    assert validate(data, tmp_path / "v") == 2
    assert "need about" in capsys.readouterr().err

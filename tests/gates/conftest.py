"""Gate folders produced once per session by real training on the sample data (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moola.cli import main


def gate(gate_name: str, sample_dir: Path, out: Path, *extra) -> int:
    return main(["gate", "run", gate_name, "--data", str(sample_dir / "train.parquet"),
                 "--out", str(out), "--device", "cpu", *map(str, extra)])


@pytest.fixture(scope="session")
def gate_dirs(sample_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gates")
    d = {g: root / g for g in ("baseline", "minirocket", "pretrain", "transfer", "augment")}
    codes = {
        "baseline": gate("baseline", sample_dir, d["baseline"]),
        "minirocket": gate("minirocket", sample_dir, d["minirocket"], "--baseline", d["baseline"]),
        "pretrain": gate("pretrain", sample_dir, d["pretrain"], "--unlabeled", sample_dir / "unlabeled.parquet"),
        "transfer": gate("transfer", sample_dir, d["transfer"], "--encoder", d["pretrain"],
                         "--baseline", d["baseline"]),
        "augment": gate("augment", sample_dir, d["augment"], "--baseline", d["baseline"]),
    }
    d["codes"] = codes
    return d

"""Shared fixtures: sample data written once per session, a frame factory for mutations, gate folders
produced once per session by real training on the sample data (CPU), a minimal sealed folder, and
the session's loopback sshd (a host with its own disk: tests/fakes/sshd_server.py)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Tests never talk to a real Prefect Cloud or leave telemetry around.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Nor read the developer's settings: a `.env` in the checkout (the README has users write one, e.g.
# MOOLA_RUNNER=runpod) or MOOLA_*/RUNPOD_* in the shell would send the suite's gates elsewhere, to billed
# pods at worst. Each test sets what it needs; subprocesses inherit this clean environment.
# Under pytest-xdist each worker inherits the controller's environment, cleaned already: the workers'
# gates then claim cores in one folder, so two workers' gates share the machine's cores, not each all.
if "PYTEST_XDIST_WORKER" not in os.environ:
    for _k in [k for k in os.environ if k.startswith(("MOOLA_", "RUNPOD_"))]:
        del os.environ[_k]
    os.environ["MOOLA_ENV_FILE"] = ""
    # The suite's gates claim cores among themselves, not with other moola processes on this machine.
    os.environ["MOOLA_CORES_DIR"] = tempfile.mkdtemp(prefix="moola-test-cores-")

from moola.cli.main import main  # noqa: E402
from moola.core.seal import write_manifest  # noqa: E402
from moola.data.sample import make_sample, write_sample  # noqa: E402
from tests.fakes.sshd_server import make_sshd, own_disk  # noqa: E402


def pytest_configure(config):
    """Without the end-to-end flows (`make test-fast`), each xdist worker claims cores in a folder of
    its own: two gates then train at once (each slower, neither idle), where a shared folder made
    one wait for the other. With them (`make test`) the folder stays shared: the flows' pods and
    watchdogs keep time by the wall clock and get the cores they wait for."""
    if os.environ.get("PYTEST_XDIST_WORKER") and config.option.markexpr == "not e2e":
        os.environ["MOOLA_CORES_DIR"] = tempfile.mkdtemp(prefix="moola-test-cores-")


def pytest_collection_modifyitems(config, items):
    """tests/flows/ runs flows end to end through Prefect servers: marked `e2e`, which `make test-fast`
    leaves out (`make test` runs everything). Under pytest-xdist (`-n 2 --dist loadgroup`, as make
    runs it) they form one group, run by one worker one after another on one Prefect server, while
    the other worker takes the rest."""
    for item in items:
        if item.nodeid.startswith("tests/flows/"):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))


def pytest_terminal_summary(terminalreporter, config):
    """The order's seed (pytest-randomly), also under -q: `--randomly-seed=N` repeats a run's order."""
    seed = config.getoption("randomly_seed", default=None)
    if seed is not None:
        terminalreporter.write_line(f"test order: --randomly-seed={seed}")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sample")
    write_sample(d, seed=17, n_labeled=98, n_unlabeled=300)
    return d


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    lab, _ = make_sample(seed=17, n_labeled=98, n_unlabeled=0)
    return frame_from(lab)


def frame_from(lab: dict) -> pd.DataFrame:
    df = pd.DataFrame({
        "window_id": lab["ids"],
        "timestamp": pd.DatetimeIndex(lab["starts"]),
        "label": lab["labels"],
        "features": [x.tolist() for x in lab["X"]],
    })
    if lab.get("groups") is not None:
        df["base_window"] = lab["groups"]
    return df


@pytest.fixture
def write_frame(tmp_path):
    """write_frame(df) -> path of a Parquet file holding df."""
    def _write(df: pd.DataFrame, name: str = "train.parquet") -> Path:
        path = tmp_path / name
        df.to_parquet(path, index=False)
        return path
    return _write


def features_array(df: pd.DataFrame) -> np.ndarray:
    return np.array([np.array(f, dtype=float) for f in df["features"]])


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


@pytest.fixture
def gate_dir(tmp_path):
    """A minimal sealed gate folder (what the registry stores)."""
    d = tmp_path / "gate"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"x" * 1000)
    (d / "result.json").write_text(json.dumps({"metrics": {"f1_weighted": 0.7}}))
    write_manifest(d)
    return d


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """The session's loopback sshd: a host with its own disk, which sees nothing of this checkout or
    of the tests' temp folders but what moola uploads (``sshd.host(path)`` finds its files)."""
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        pytest.fail("sshd is missing: install Debian's openssh-server (.ci/run does)")
    server = make_sshd(tmp_path_factory.mktemp("sshd"), hide=own_disk(tmp_path_factory.getbasetemp()))
    server.start()
    yield server
    server.stop()

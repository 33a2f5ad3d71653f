"""The installed distribution: moola and moola_flows (the repository's flows/ folder), never a
top-level `flows` that would shadow a user's own Prefect code; the worker type's entry point loads
no torch (Prefect imports every collection in the server and in each worker)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_list_is_every_package_on_disk():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    on_disk = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "moola").rglob("__init__.py"))
    assert sorted(listed) == sorted([*on_disk, "moola_flows"])


def test_the_wheel_holds_moola_and_moola_flows_only_and_a_fresh_venv_has_no_flows(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("moola", "flows"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, cwd=src)
    wheel = next((tmp_path / "dist").glob("moola-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"moola", "moola_flows", next(n for n in names if ".dist-info/" in n).split("/")[0]}
    assert "moola_flows/worker.py" in names and "moola/pods/pod.lock" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "[prefect.collections]\nmoola = moola_flows.worker" in zipfile.ZipFile(wheel).read(entry).decode()

    venv = tmp_path / "venv"  # only the project (no dependencies): what it puts on sys.path
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    py = str(venv / "bin" / "python")
    assert subprocess.run([py, "-c", "import flows"], capture_output=True, text=True, cwd=tmp_path).returncode == 1
    assert subprocess.run([py, "-c", "import moola, moola_flows"], cwd=tmp_path).returncode == 0


def test_the_worker_entry_point_imports_no_torch():
    """Nor the other heavy libraries of the gates: Prefect imports this module in every process that
    loads collections. scikit-learn and scipy came in through the evidence's types once (2.5 s -> 5 s),
    pandas through DataConfig."""
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="prefect.collections") if e.name == "moola"]
    r = subprocess.run([sys.executable, "-c", f"import sys, {ep.value}; print(sorted(m for m in ('torch', 'sktime', "
                        "'numba', 'sklearn', 'scipy', 'pandas') if m in sys.modules))"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr[-2000:]

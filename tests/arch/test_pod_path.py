"""What a pod runs needs none of the orchestrator's packages: `moola gate run` (a classifier gate)
in a fresh interpreter where prefect, paramiko, runpod, pydantic-settings and
filelock cannot be imported, as on a pod whose image has only the core dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

ORCHESTRATOR_ONLY = ("prefect", "paramiko", "runpod", "pydantic_settings", "filelock", "psutil", "matplotlib")

# sys.modules[name] = None makes `import name` (and `import name.sub`) raise ImportError
RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from moola.cli.main import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r} and sys.modules[m] is not None)
print("LOADED", loaded)
sys.exit(code)
"""


def pod_gate(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN.format(blocked=ORCHESTRATOR_ONLY), *argv],
                          capture_output=True, text=True, timeout=300, env=env)


def test_moola_gate_run_needs_none_of_the_orchestrators_packages(sample_dir, tmp_path):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOOLA_", "RUNPOD_"))}
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"fit": {"epochs": 2}, "model": {"hidden": 8}}))
    # a classifier gate (Gate 0's checks, training, the sealed folder), without --runner: the default
    # runner then comes from the environment, as pydantic-settings is not there
    r = pod_gate("gate", "run", "baseline", "--data", str(sample_dir / "train.parquet"), "--out", str(tmp_path / "b"),
                 "--config", str(config), "--device", "cpu", env=env)
    assert r.returncode in (0, 3), r.stdout[-2000:] + r.stderr[-3000:]  # passed or failed: a result
    assert "LOADED []" in r.stdout
    assert (tmp_path / "b" / "model.safetensors").is_file() and (tmp_path / "b" / "MANIFEST.sha256").is_file()


def test_the_check_itself_refuses_an_orchestrator_package():
    """The blocking works: a command that needs paramiko (`moola remote check`) cannot run there."""
    r = pod_gate("remote", "check")
    assert r.returncode == 1 and "import of paramiko halted" in r.stderr, r.stderr[-2000:]

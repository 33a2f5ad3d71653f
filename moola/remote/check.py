"""``moola remote check``: what the remote Python has, and install what the gate runner lacks."""

from __future__ import annotations

import json
import shlex

from moola.core.errors import RemotePermanent

# import name -> pip requirement: exactly what `moola gate run` needs on a pod
CORE = {"torch": "torch>=2.6", "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "sklearn": "scikit-learn",
        "sktime": "sktime>=1.2", "numba": "numba", "pydantic": "pydantic>=2.6", "safetensors": "safetensors"}

PROBE = """
import importlib, json, platform, sys
out = {"python": platform.python_version(), "executable": sys.executable, "packages": {}}
for name in %s:
    try:
        m = importlib.import_module(name)
        out["packages"][name] = getattr(m, "__version__", "?")
    except Exception as exc:
        out["packages"][name] = None
try:
    import torch
    out["cuda"] = torch.cuda.is_available()
    out["gpu"] = torch.cuda.get_device_name(0) if out["cuda"] else None
except Exception:
    out["cuda"], out["gpu"] = False, None
print("MOOLA_CHECK " + json.dumps(out))
"""


def remote_check(runner, install: bool = False) -> dict:
    """Probe the remote; with ``install``, pip-install missing core packages, then probe again."""
    with runner.session() as client:
        report = _probe(runner, client)
        missing = [CORE[k] for k, v in report["packages"].items() if v is None]
        report["missing"] = missing
        if missing and install:
            code, tail = runner.execute(client, [runner.python, "-m", "pip", "install", "-q", *missing],
                                      stream_as="pip")
            if code != 0:
                raise RemotePermanent(f"pip install {' '.join(map(shlex.quote, missing))} failed on "
                                      f"{runner.host}:\n{tail}")
            report = _probe(runner, client)
            report["installed"] = missing
            report["missing"] = [CORE[k] for k, v in report["packages"].items() if v is None]
        return report


def _probe(runner, client) -> dict:
    code, tail = runner.execute(client, [runner.python, "-c", PROBE % json.dumps(list(CORE))])
    for line in tail.splitlines():
        if line.startswith("MOOLA_CHECK "):
            return json.loads(line[len("MOOLA_CHECK "):])
    raise RemotePermanent(f"{runner.host}: cannot run {runner.python} (exit {code}):\n{tail}")

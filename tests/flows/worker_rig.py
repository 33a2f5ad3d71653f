"""The `runpod` worker as a user starts it, against the RunPod emulator (the real `runpod` SDK talks
to it; its pods are container-like: tests/fakes/runpod_emulator.py) whose image Python lacks what a
fresh RunPod image lacks (tests/flows/test_worker.py, bench/pod.py).

Nothing about the pods is configured for the worker but what a user configures: the API key, the
SSH key. No known_hosts, no fingerprint, no remote workdir or interpreter: the defaults must work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.pod_image import make_image_python, make_wheelhouse
from tests.fakes.runpod_emulator import IMAGE_PYTHON_AT, RunPodEmulator
from tests.flows.conftest import PREFECT, ROOT, deploy

KEY = "rp_worker_test_key"


@dataclass
class Rig:
    root: Path
    api: RunPodEmulator
    env: dict
    worker: subprocess.Popen
    log: Path

    def start_worker(self) -> None:
        """(Re)start the worker, as a user does: `prefect worker start --pool runpod --type runpod`."""
        self.worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "runpod", "--type", "runpod",
                                        "--name", "w1"], cwd=ROOT, env=self.env, stdout=open(self.log, "a"),
                                       stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        try:
            os.killpg(self.worker.pid, signal.SIGTERM)
            self.worker.wait(timeout=30)
        except ProcessLookupError:  # stopped already (a test stops it on purpose)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.api.close()


# sktime's numba kernels compiled once into this environment's cache, which the pods' image sees
# (each pod's own writes vanish with it: without this every pod would compile them, ~60 s each)
WARM_NUMBA = """
import numpy as np
from moola.models.minirocket import fit_minirocket
X = np.random.default_rng(0).normal(size=(12, 20, 4)).astype("float32")
fit_minirocket(X, ["a", "b"] * 6, ["a", "b"], seed=0)
"""


def start_rig(root: Path, server_env: dict, hide: list[Path], boot_polls: int = 0) -> Rig:
    """The emulated RunPod account (pods hide ``hide``, the orchestrator's folders, and this checkout:
    a pod has nothing of moola's but what moola uploads; only the checkout's venv, which the image's
    Python links into, stays), a client SSH key, a wheelhouse, the deployments, and a worker."""
    image = root / "img"
    make_image_python(image, seen_at=IMAGE_PYTHON_AT)
    venv = Path(sys.prefix)
    api = RunPodEmulator(root / "pods", api_key=KEY, image=image, hide=[*hide, ROOT], boot_polls=boot_polls,
                         keep=[venv] if venv.is_relative_to(ROOT) else [])
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "client_key")], check=True)
    env = dict(server_env, RUNPOD_API_KEY=KEY, RUNPOD_API_BASE_URL=api.url, MOOLA_SSH_KEY=str(root / "client_key"),
               MOOLA_POD_WHEELHOUSE=str(make_wheelhouse(root / "wheelhouse")), MOOLA_SSH_TIMEOUT="3",
               MOOLA_ARTIFACTS=str(root / "worker-art"), PREFECT_WORKER_QUERY_SECONDS="1",
               MOOLA_POD_LOST_AFTER_S="6")  # a killed pod is judged lost in 6 s, not 20: the suite's time
    for k in [k for k in env if k.startswith("MOOLA_SSH_KNOWN") or k in ("MOOLA_SSH_HOST_KEY_SHA256",
                                                                        "MOOLA_REMOTE_WORKDIR", "MOOLA_POD_PYTHON")]:
        del env[k]
    subprocess.run([sys.executable, "-c", WARM_NUMBA], check=True, cwd=ROOT)
    deploy(server_env)
    rig = Rig(root, api, env, None, root / "worker.log")
    rig.start_worker()
    return rig

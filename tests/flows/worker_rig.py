"""The `runpod` worker as a user starts it, against the fake RunPod API and a loopback sshd whose
Python lacks what a fresh RunPod image lacks (tests/flows/test_worker.py, bench/pod.py)."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.flows.conftest import PREFECT, ROOT, deploy
from tests.remote.fake_runpod_http import FakeRunPodHTTP
from tests.remote.pod_image import make_image_python, make_wheelhouse
from tests.remote.sshd_server import SSHD, make_sshd

KEY = "rp_worker_test_key"


@dataclass
class Rig:
    root: Path
    api: FakeRunPodHTTP
    sshds: list[SSHD]  # the loopback pods: the n-th pod the API creates is the n-th sshd (cycling)
    worker: subprocess.Popen
    log: Path

    @property
    def sshd(self) -> SSHD:
        return self.sshds[0]

    @property
    def remote(self) -> Path:
        return self.root / "remote"

    def stop(self) -> None:
        try:
            os.killpg(self.worker.pid, signal.SIGTERM)
            self.worker.wait(timeout=30)
        except ProcessLookupError:  # stopped already (a test stops it on purpose)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-f", f"moola.remote.watchdog --heartbeat {self.root}"], check=False)
        for sshd in self.sshds:
            sshd.stop()
        self.api.close()


def start_rig(root: Path, server_env: dict, boot_polls: int = 0, pods: int = 1) -> Rig:
    """Fake API, ``pods`` loopback pods (sshds with their own host keys, one client identity, the
    same image Python and disk), a wheelhouse, the deployments, and a worker."""
    api = FakeRunPodHTTP(api_key=KEY, ssh_port=0, boot_polls=boot_polls)
    sshds = []
    for i in range(pods):
        (root / f"sshd{i}").mkdir(parents=True)
        # the pod's sessions see what RunPod sets in a pod: its API key (and, here, the fake's address)
        sshds.append(make_sshd(root / f"sshd{i}", env={"RUNPOD_API_KEY": KEY, "RUNPOD_API_BASE_URL": api.url},
                               client_key=sshds[0].client_key if sshds else None))
        sshds[-1].start()
    api.ssh_port, api.ssh_ports = sshds[0].port, [s.port for s in sshds]
    known = root / "known_hosts"
    known.write_text("".join(s.known_hosts.read_text() for s in sshds))
    env = dict(server_env, RUNPOD_API_KEY=KEY, RUNPOD_API_BASE_URL=api.url, MOOLA_SSH_USER=getpass.getuser(),
               MOOLA_SSH_KEY=str(sshds[0].client_key), MOOLA_SSH_KNOWN_HOSTS=str(known),
               MOOLA_REMOTE_WORKDIR=str(root / "remote"), MOOLA_REMOTE_PYTHON=str(make_image_python(root / "img")),
               MOOLA_POD_WHEELHOUSE=str(make_wheelhouse(root / "wheelhouse")), MOOLA_SSH_TIMEOUT="3",
               MOOLA_ARTIFACTS=str(root / "worker-art"), PREFECT_WORKER_QUERY_SECONDS="1")
    deploy(server_env)
    log = root / "worker.log"
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "runpod", "--type", "runpod", "--name", "w1"],
                              cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    return Rig(root, api, sshds, worker, log)

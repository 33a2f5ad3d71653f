"""Gates claim the cores they train on (moola/train/cores.py): a second process sees them taken,
a killed holder frees them, and thread pools and affinity are put back afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from moola.train.cores import _try_claim, claimed_cores

HOLD = """
import sys, time
from moola.train.cores import claimed_cores
with claimed_cores() as n:
    print(n, flush=True)
    time.sleep(600)
"""


def test_a_gate_holds_every_free_core_and_puts_threads_and_affinity_back(tmp_path, monkeypatch):
    monkeypatch.setenv("MOOLA_CORES_DIR", str(tmp_path))
    cores = sorted(os.sched_getaffinity(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with claimed_cores() as n:
            assert n == len(cores) and torch.get_num_threads() == n
            assert _try_claim(tmp_path, cores) == []  # another claimant (another descriptor) gets none
        assert torch.get_num_threads() == 1 and sorted(os.sched_getaffinity(0)) == cores
        held = _try_claim(tmp_path, cores)  # released on the way out
        assert [c for c, _ in held] == cores
        for _, fd in held:
            os.close(fd)
    finally:
        torch.set_num_threads(threads)


def test_the_native_blas_pools_get_the_claimed_cores_and_get_theirs_back(tmp_path, monkeypatch):
    """numpy/scipy's OpenBLAS (MiniRocket's ridge) spun a thread per machine core whatever the gate held."""
    import numpy  # noqa: F401  (loads OpenBLAS)
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    monkeypatch.setenv("MOOLA_CORES_DIR", str(tmp_path))
    cores = sorted(os.sched_getaffinity(0))
    others = _try_claim(tmp_path, cores[1:])  # another gate holds every core but one
    before = blas()
    try:
        with claimed_cores() as n:
            assert n == 1 and blas() and set(blas()) == {1}
        assert blas() == before
    finally:
        for _, fd in others:
            os.close(fd)


def test_another_process_holding_the_cores_blocks_a_claim_until_it_dies(tmp_path):
    env = {**os.environ, "MOOLA_CORES_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert int(proc.stdout.readline()) == len(os.sched_getaffinity(0))
        cores = sorted(os.sched_getaffinity(0))
        assert _try_claim(tmp_path, cores) == []
        proc.send_signal(signal.SIGKILL)  # a crashed gate leaves nothing held: the kernel drops its locks
        proc.wait(30)
        held = _try_claim(tmp_path, cores)
        assert len(held) == len(cores)
        for _, fd in held:
            os.close(fd)
    finally:
        proc.kill()
        proc.wait(30)


def test_a_claim_folder_others_may_write_to_or_own_is_refused(tmp_path, monkeypatch):
    import pytest

    from moola.core.errors import ConfigError
    from moola.train.cores import own_folder
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="others may write"):
        own_folder(shared)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, -1) if os.getuid() == 0 else pytest.skip("needs root to give a folder away")
    with pytest.raises(ConfigError, match="belongs to uid 12345"):
        own_folder(theirs)
    assert own_folder(tmp_path / "mine") == tmp_path / "mine" and (tmp_path / "mine").stat().st_mode & 0o777 == 0o700

"""Gates share a machine's cores instead of fighting over them.

Measured on a 2-core machine (issue 12): one baseline gate took ~12 s alone and from 80 s to
over 13 minutes while another gate ran beside it, because each process spun two torch/OpenMP
threads on the same two cores (spin-waiting threads starve each other). So a training gate
first claims cores: one lock file per core (``flock``, released by the kernel when the process
exits, so a crash leaves nothing held), under ``MOOLA_CORES_DIR`` (default: a per-user folder in
the temp directory). It takes every core that is free, waits while none is, then sizes torch's,
numba's and the native BLAS/OpenMP thread pools (threadpoolctl: the ridge of MiniRocket runs on
OpenBLAS) to what it holds and pins itself to those cores. Two gates at once thus share the
cores (or queue) rather than oversubscribe them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_limits

from moola.core.errors import ConfigError

log = logging.getLogger("moola.train.cores")


def cores_dir() -> Path:
    return Path(os.environ.get("MOOLA_CORES_DIR") or Path(tempfile.gettempdir()) / f"moola-cores-{os.getuid()}")


def own_folder(folder: Path) -> Path:
    """``folder``, made if missing; refused when another user owns it or others may write to it (in a
    shared temp directory anyone can create it first and hold every core, or swap the lock files)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise ConfigError(f"{folder}: the core-claim folder belongs to uid {st.st_uid} (you are {os.getuid()}) "
                          f"or others may write to it (mode {st.st_mode & 0o777:o}); remove it or set "
                          "MOOLA_CORES_DIR to a folder of your own")
    return folder


def _try_claim(folder: Path, cores: list[int]) -> list[tuple[int, int]]:
    held = []
    for c in cores:
        fd = os.open(folder / f"core-{c}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append((c, fd))
        except BlockingIOError:
            os.close(fd)
    return held


def _set_threads(n: int) -> None:
    import torch
    torch.set_num_threads(n)
    try:
        import numba  # MiniRocket's kernels (sktime) run on numba's thread pool
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


@contextmanager
def claimed_cores(poll_s: float = 0.5):
    """Hold the free cores of this machine (at least one; waits for it) for the block; yields
    how many. Thread pools and the CPU affinity are restored afterwards."""
    import torch
    cores = sorted(os.sched_getaffinity(0))
    folder = own_folder(cores_dir())
    held = _try_claim(folder, cores)
    if not held:
        log.info("all %d cores are in use by other moola gates: waiting for one", len(cores))
        t0 = time.perf_counter()
        while not held:
            time.sleep(poll_s)
            held = _try_claim(folder, cores)
        log.info("got %d core(s) after %.1f s", len(held), time.perf_counter() - t0)
    before_threads, before_affinity = torch.get_num_threads(), os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {c for c, _ in held})
        _set_threads(len(held))
        with threadpool_limits(limits=len(held)):  # every BLAS/OpenMP pool loaded so far; put back on exit
            yield len(held)
    finally:
        os.sched_setaffinity(0, before_affinity)
        _set_threads(before_threads)
        for _, fd in held:
            os.close(fd)  # closing the descriptor releases its flock

"""sha256 of a file, read in blocks (inputs, model files, manifests all use it), or while it is written."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_while_written(path: Path, proc: subprocess.Popen) -> str:
    """sha256 of ``path`` read as ``proc`` writes it, to the end once ``proc`` has exited.

    Only a hint: if the writer ever filled a hole behind the reader, this differs from the
    file's real hash and the caller re-reads the whole file before declaring a mismatch.
    """
    h = hashlib.sha256()
    while not path.exists():
        if proc.poll() is not None:
            return h.hexdigest()
        time.sleep(0.002)
    with open(path, "rb") as f:
        while True:
            exited = proc.poll() is not None  # read before the last pass, so nothing is missed
            block = f.read(1 << 20)
            if block:
                h.update(block)
            elif exited:
                return h.hexdigest()
            else:
                time.sleep(0.002)

"""Files: atomic writes (readers see the old state or the new one, never a half) and sha256.

    write_json_atomic(path, obj)   temporary file in the same folder, fsync, rename, fsync folder
    replace_folder(tmp, final)     a finished folder renamed over an absent, empty or old one
    fsync_dir(folder)              make a rename in ``folder`` survive a power cut
    sha256_file(path)              sha256 of a file, read in blocks
    hash_while_written(path, proc) its sha256 read as ``proc`` writes it

A failed write removes its temporary file and leaves the old file as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory fds: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically; on any error the old file stays and the
    temporary one is removed (the OSError propagates for the caller to explain)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def replace_folder(tmp: Path, final: Path) -> None:
    """Rename the finished folder ``tmp`` to ``final``. ``final`` may be absent, an empty folder,
    or an older folder that the caller has checked it may replace: it is moved aside first and
    removed only after the new one is in place."""
    tmp, final = Path(tmp), Path(final)
    old = None
    if final.is_dir() and any(final.iterdir()):
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        os.replace(final, old)
    elif final.is_dir():
        final.rmdir()
    os.replace(tmp, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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

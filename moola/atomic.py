"""Atomic file and folder writes: readers see the old state or the new one, never a half.

    write_json_atomic(path, obj)   temporary file in the same folder, fsync, rename, fsync folder
    replace_folder(tmp, final)     a finished folder renamed over an absent, empty or old one
    fsync_dir(folder)              make a rename in ``folder`` survive a power cut

A failed write removes its temporary file and leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import shutil
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


def check_replaceable(out: Path, flag: str = "--out") -> None:
    """A gate may write ``out`` only when it is absent, an empty folder, or an earlier gate
    folder (it holds a MANIFEST.sha256): anything else is the user's and is never replaced."""
    from .errors import ConfigError
    from .modelfile import MANIFEST
    out = Path(out)
    here = Path.cwd().resolve()
    resolved = out.resolve()
    if resolved == here or here.is_relative_to(resolved):
        raise ConfigError(f"{flag} {out}: is the working directory or holds it; give a new folder such as "
                          f"{out / 'gate-out'}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"{flag} {out}: exists and is not a folder; give a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"{flag} {out}: exists and holds files that are not a gate's output (no {MANIFEST}); "
                          "moola replaces only absent, empty or earlier gate folders: give a new folder")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"{flag} {out}: {out.parent} is not a folder")

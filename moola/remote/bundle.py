"""The code bundle shipped to a remote: the local ``moola`` package as a deterministic tar.gz,
named by the sha256 of its content, so it is uploaded once per code version."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import moola

PACKAGE_DIR = Path(moola.__file__).parent


def build_bundle() -> tuple[bytes, str]:
    """(tar.gz bytes, sha256 of the source files). Same source -> same bytes and hash."""
    files = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in files:
            rel = Path("moola") / p.relative_to(PACKAGE_DIR)
            data = p.read_bytes()
            digest.update(rel.as_posix().encode() + b"\0" + data + b"\0")
            info = tarfile.TarInfo(rel.as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), digest.hexdigest()

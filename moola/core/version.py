"""The code version a result records: the git commit of this checkout or of the shipped bundle."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_commit() -> str | None:
    """MOOLA_GIT_COMMIT (set when code is shipped to a pod), else ``git rev-parse HEAD``."""
    if os.environ.get("MOOLA_GIT_COMMIT"):
        return os.environ["MOOLA_GIT_COMMIT"]
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                           text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None

"""The session's loopback sshd (see sshd_server.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .sshd_server import make_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        pytest.fail("sshd is missing: install Debian's openssh-server (.ci/run does)")
    server = make_sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()

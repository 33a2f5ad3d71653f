"""The session's loopback sshd (see sshd_server.py): a host with its own disk, which sees nothing of this
checkout or of the tests' temp folders but what moola uploads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .sshd_server import make_sshd, own_disk


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        pytest.fail("sshd is missing: install Debian's openssh-server (.ci/run does)")
    server = make_sshd(tmp_path_factory.mktemp("sshd"), hide=own_disk(tmp_path_factory.getbasetemp()))
    server.start()
    yield server
    server.stop()

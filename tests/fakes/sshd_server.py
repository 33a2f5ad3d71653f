"""A real OpenSSH sshd on a loopback port with its own host key and authorized_keys (tests, bench)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from moola.remote.ssh import SSHRunner


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first found first."""
    ps = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in ps.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass
class SSHD:
    root: Path
    port: int
    config: Path
    client_key: Path
    known_hosts: Path
    fingerprint: str
    hide: tuple[Path, ...] = ()
    proc: subprocess.Popen | None = None

    def host(self, path: str | Path) -> Path:
        """Where ``path`` on the host's own disk is found from this side (what the host wrote there,
        or what a test puts there as the host's own files). Not hidden: the same path."""
        path = Path(path)
        if not any(path == h or h in path.parents for h in self.hide):
            return path
        return self.root / "disk" / str(path).lstrip("/")

    def start(self) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        cmd = [sshd, "-D", "-e", "-f", str(self.config)]
        if self.hide:  # a host of its own: this machine's folders in ``hide`` are its own disk there
            (self.root / "disk").mkdir(exist_ok=True)
            keep = [self.root, Path(sys.prefix)]  # its config and keys; the interpreter it runs
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", OWN_DISK, "own-disk",
                   str(self.root / "disk"), ":".join(map(str, keep)), ":".join(map(str, self.hide)), *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        """Kill it as a pod that is gone: the listener, every session and what runs in them (a
        session's process is named `sshd: user@notty`, so it is found by parentage, not by name)."""
        if self.proc and self.proc.poll() is None:
            for pid in [*descendants(self.proc.pid), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        subprocess.run(["pkill", "-f", f"sshd.*{self.config}"], check=False)

    def runner(self, workdir: Path, **kw) -> SSHRunner:
        args = dict(host="127.0.0.1", port=self.port, user=getpass.getuser(), key=self.client_key,
                    known_hosts=self.known_hosts, workdir=str(workdir), python=sys.executable, timeout=5.0)
        args.update(kw)
        return SSHRunner(**args)




# Runs in the host's own mount namespace, then execs sshd: each hidden folder is replaced by the
# host's own (under DISK, kept across restarts, as a machine's disk is); KEEP (below a hidden folder)
# is put back. So nothing of this checkout or of the tests' temp folders reaches the host but what
# moola uploads, the same rule as the pods of tests/fakes/runpod_emulator.py.
OWN_DISK = r"""set -e
DISK=$1 KEEP=$2 HIDE=$3; shift 3
mount -t tmpfs tmpfs /mnt
mkdir /mnt/disk; mount --bind "$DISK" /mnt/disk
IFS=:
i=0; for k in $KEEP; do mkdir -p /mnt/k$i; mount --bind "$k" /mnt/k$i; i=$((i+1)); done
for h in $HIDE; do mkdir -p "/mnt/disk$h"; mount --bind "/mnt/disk$h" "$h"; done
i=0; for k in $KEEP; do mkdir -p "$k"; mount --move /mnt/k$i "$k"; i=$((i+1)); done
unset IFS
exec "$@"
"""


# A session's command runs through the user's login shell; bash run by sshd reads ~/.bashrc when
# its shell level is below 2, and a developer's .bashrc may run `pyenv init` and `pyenv rehash` on
# every command (0.19 s against 0.06 s here) and, killed mid-rehash with a pod, leave pyenv's lock
# behind so that every later command waits 60 s for it. A pod's shell has no such files: start at 1.
NO_STARTUP_FILES = {"SHLVL": "1"}


def make_sshd(root: Path, client_key: Path | None = None, port: int | None = None,
              hide: tuple[Path, ...] = ()) -> SSHD:
    """Keys, config and known_hosts under ``root``; call .start() to run it. A plain host, not a
    RunPod pod (those are tests/fakes/runpod_emulator.py, whose sessions never see RUNPOD_*).
    ``client_key``: admit this key (several pods, one identity) instead of making one. ``port``: listen
    there (an impostor at a pod's address) instead of a free port. ``hide``: folders of this machine
    the host must not see (own_disk() gives the tests' default); ``SSHD.host`` finds its copy."""
    _keygen(root / "host_key")
    if client_key is None:
        _keygen(root / "client_key")
        client_key = root / "client_key"
    shutil.copy(f"{client_key}.pub", root / "authorized_keys")
    port = port or _free_port()
    config = root / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {root / 'host_key'}
PidFile {root / 'sshd.pid'}
AuthorizedKeysFile {root / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
SetEnv {" ".join(f"{k}={v}" for k, v in NO_STARTUP_FILES.items())}
""")
    host_key = paramiko.Ed25519Key.from_private_key_file(str(root / "host_key"))
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    server = SSHD(root, port, config, Path(client_key), known, host_key.fingerprint, tuple(map(Path, hide)))
    return server


def own_disk(tmp_root: Path) -> tuple[Path, ...]:
    """What a test host must not share with the tests: this checkout and the tests' temp root."""
    import moola
    return (Path(moola.__file__).resolve().parents[1], Path(tmp_root).resolve())

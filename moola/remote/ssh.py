"""The ssh runner: a gate on a host reached with paramiko, its folder fetched back verified.

Steps: connect (host key verified: the key moola gave a pod it created, known_hosts, or a
pinned SHA256 fingerprint; never trust-on-first-use) -> upload the code bundle once per content hash -> upload inputs
content-addressed by sha256 -> run ``moola gate run`` from an argv list, quoted, streaming its
log -> fetch the output folder over SFTP into a temporary folder, check every file against
the remote MANIFEST.sha256, and rename it into place only when complete.

paramiko and socket errors are converted here: refused / reset / timeout / banner errors are
RemoteUnavailable (worth retrying); auth and host-key problems are RemotePermanent.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import paramiko

from moola.core.errors import (
    ConfigError,
    GateTimedOut,
    HostKeyMismatch,
    ModelFileError,
    RemotePermanent,
    RemoteUnavailable,
)
from moola.core.files import hash_while_written, replace_folder, sha256_file
from moola.core.seal import MANIFEST, check_replaceable, parse_manifest
from moola.core.version import git_commit
from moola.gates.call import GateCall, raise_for_exit
from moola.remote.bundle import build_bundle

log = logging.getLogger("moola.remote.ssh")


class _PinnedKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host key only when it matches the pinned fingerprint; else refuse."""

    def __init__(self, pinned: str | None, pod_key: bool = False):
        self.pinned, self.pod_key = pinned, pod_key

    def missing_host_key(self, client, hostname, key):
        seen = key.fingerprint  # 'SHA256:...' as OpenSSH prints it
        if self.pinned and seen == self.pinned:
            client.get_host_keys().add(hostname, key.get_name(), key)
            return
        if self.pod_key:
            raise HostKeyMismatch(f"host key of {hostname} is {key.get_name()} {seen}, not the key moola gave this pod "
                                  "at creation: refused (another machine answers at the pod's address)")
        raise HostKeyMismatch(
            f"host key of {hostname} is {key.get_name()} {seen}, which is "
            + (f"not the pinned {self.pinned}" if self.pinned else "not in known_hosts")
            + f"; if you trust it, set MOOLA_SSH_HOST_KEY_SHA256={seen} (or add it to MOOLA_SSH_KNOWN_HOSTS)")


class SSHRunner:
    def __init__(self, host: str, port: int = 22, user: str = "root", key: Path | None = None,
                 known_hosts: Path | None = None, pinned_sha256: str | None = None,
                 workdir: str = "/workspace/moola", python: str = "python3", timeout: float = 15.0,
                 limit_kbit: int | None = None, passphrase: str | None = None, site: str | None = None,
                 host_key: str | None = None, gate_timeout_s: float | None = None):
        if not known_hosts and not pinned_sha256 and not host_key:
            raise ConfigError("ssh: set MOOLA_SSH_KNOWN_HOSTS or MOOLA_SSH_HOST_KEY_SHA256; "
                              "host keys are never trusted blindly")
        self.host, self.port, self.user, self.key = host, port, user, key
        self.known_hosts, self.pinned = known_hosts, pinned_sha256
        # 'ssh-ed25519 AAAA...': the key moola gave a pod it created; the only key accepted for it
        self.host_key = host_key
        self.workdir, self.python, self.timeout = PurePosixPath(workdir), python, timeout
        self.limit_kbit = limit_kbit  # cap on big fetches (scp -l), e.g. to spare a shared link
        self._passphrase = passphrase  # of an encrypted key; never logged
        self.site = site  # the pod's pinned packages (moola.pods.env), after the code on PYTHONPATH
        self.gate_timeout_s = gate_timeout_s  # a gate is ended on the host after this long (None: never)

    @classmethod
    def from_settings(cls, s, host_key: str | None = None) -> "SSHRunner":
        if not s.moola_ssh_host:
            raise ConfigError("ssh runner: MOOLA_SSH_HOST is not set")
        return cls(s.moola_ssh_host, s.moola_ssh_port, s.moola_ssh_user, s.moola_ssh_key,
                   s.moola_ssh_known_hosts, s.moola_ssh_host_key_sha256, s.moola_remote_workdir,
                   s.moola_remote_python, s.moola_ssh_timeout, s.moola_fetch_limit_kbit,
                   s.moola_ssh_key_passphrase.get_secret_value() if s.moola_ssh_key_passphrase else None,
                   host_key=host_key, gate_timeout_s=s.moola_gate_timeout_s)

    # -- connection -------------------------------------------------------------------------
    def connect(self) -> paramiko.SSHClient:
        if self.key is not None and not Path(self.key).is_file():
            raise RemotePermanent(f"ssh key {self.key} (MOOLA_SSH_KEY) not found")
        if self.known_hosts is not None and not Path(self.known_hosts).is_file():
            raise RemotePermanent(f"known_hosts file {self.known_hosts} (MOOLA_SSH_KNOWN_HOSTS) not found")
        client = paramiko.SSHClient()
        if self.host_key:  # a pod moola created: exactly its key, nothing from known_hosts
            kind, blob = self.host_key.split()[:2]
            name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
            client.get_host_keys().add(name, kind, paramiko.PKey.from_type_string(kind, base64.b64decode(blob)))
            client.set_missing_host_key_policy(_PinnedKeyPolicy(None, pod_key=True))
        else:
            if self.known_hosts:
                client.load_host_keys(str(self.known_hosts))
            client.set_missing_host_key_policy(_PinnedKeyPolicy(self.pinned))
        where = f"{self.user}@{self.host}:{self.port}"
        try:
            client.connect(self.host, self.port, username=self.user,
                           key_filename=str(self.key) if self.key else None, passphrase=self._passphrase,
                           timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout,
                           allow_agent=False, look_for_keys=False)
        except HostKeyMismatch:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyMismatch(f"host key of {where} CHANGED: got {exc.key.fingerprint}, expected "
                                  f"{exc.expected_key.fingerprint}; someone may be intercepting the connection"
                                  + (": refused (the pod's key was given by moola at creation and cannot change)"
                                     if self.host_key else ", or the host was rebuilt (then update known_hosts)")
                                  ) from exc
        except paramiko.PasswordRequiredException as exc:
            client.close()
            raise RemotePermanent(f"ssh key {self.key} is encrypted: set MOOLA_SSH_KEY_PASSPHRASE "
                                  "(environment or .env)") from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise RemotePermanent(f"ssh authentication failed for {where} with key {self.key}: {exc}") from exc
        except (paramiko.ssh_exception.NoValidConnectionsError, socket.timeout, ConnectionError,
                EOFError, OSError, paramiko.SSHException) as exc:
            client.close()
            raise RemoteUnavailable(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc
        transport = client.get_transport()
        transport.set_keepalive(15)
        return client

    def execute(self, client: paramiko.SSHClient, argv: list[str], cwd: str | None = None,
                env: dict[str, str] | None = None, stream_as: str | None = None,
                timeout: float | None = None) -> tuple[int, str]:
        """Run argv on the host over ``client`` (a session()'s), quoted: no shell interpolation of values;
        return (exit code, log tail). The one way moola runs a command on a host or pod.
        ``timeout``: seconds without output before it counts as a lost connection (None: none)."""
        cmd = shlex.join(argv)
        if env:
            cmd = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + cmd
        if cwd:
            cmd = f"cd {shlex.quote(cwd)} && {cmd}"
        cmd += " 2>&1"  # one stream, in order
        try:
            _, stdout, _ = client.exec_command(cmd, timeout=timeout, get_pty=False)
            tail: list[str] = []
            for line in iter(stdout.readline, ""):
                line = line.rstrip("\n")
                if stream_as:
                    log.info("[%s@%s] %s", stream_as, self.host, line)
                tail = (tail + [line])[-40:]
            code = stdout.channel.recv_exit_status()
        except (socket.error, EOFError, paramiko.SSHException) as exc:
            raise RemoteUnavailable(f"connection to {self.host} lost while running a command: {exc}") from exc
        if code == -1:  # paramiko's "the channel closed without an exit status": the sshd (pod) went away
            raise RemoteUnavailable(f"connection to {self.host} lost while running a command (no exit status); "
                                    f"last lines:\n{tail[-2000:]}" if tail else
                                    f"connection to {self.host} lost while running a command (no exit status)")
        return code, "\n".join(tail)

    # -- shipping -------------------------------------------------------------------------------
    def _upload_if_missing(self, client, sftp, local_bytes_or_path, remote: PurePosixPath) -> bool:
        try:
            sftp.stat(str(remote))
            return False
        except FileNotFoundError:
            pass
        tmp = remote.with_name(f".{remote.name}.{uuid.uuid4().hex}.part")
        self.execute(client, ["mkdir", "-p", str(remote.parent)])
        if isinstance(local_bytes_or_path, bytes):
            with sftp.open(str(tmp), "wb") as f:
                f.write(local_bytes_or_path)
        else:
            sftp.put(str(local_bytes_or_path), str(tmp))
        sftp.posix_rename(str(tmp), str(remote))  # readers only ever see whole files
        return True

    def ship_code(self, client, sftp) -> PurePosixPath:
        data, digest = build_bundle()
        code_dir = self.workdir / "code" / digest
        archive = self.workdir / "code" / f"{digest}.tar.gz"
        if self._upload_if_missing(client, sftp, data, archive) or not sftp_exists(sftp, code_dir / "moola"):
            tmp = f"{code_dir}.{uuid.uuid4().hex}.tmp"
            # publish by rename-if-absent: a concurrent publisher of the same bundle leaves it alone
            code, tail = self.execute(client, ["sh", "-c", 'mkdir -p "$1" && tar -xzf "$2" -C "$1" && '
                                             '{ mv -T "$1" "$3" 2>/dev/null || rm -rf "$1"; } && test -d "$3/moola"',
                                             "sh", tmp, str(archive), str(code_dir)])
            if code != 0:
                raise RemotePermanent(f"could not unpack the code bundle on {self.host}: {tail}")
        return code_dir

    def ship_input(self, client, sftp, path: Path) -> str:
        digest = sha256_file(path)
        remote = self.workdir / "inputs" / f"{digest}{path.suffix}"
        if self._upload_if_missing(client, sftp, path, remote):
            log.info("uploaded %s (%d bytes) as %s", path.name, path.stat().st_size, remote.name)
        return str(remote)

    def ship_folder(self, client, sftp, folder: Path) -> str:
        """A gate folder (baseline, encoder), content-addressed by its manifest's hash."""
        digest = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
        remote = self.workdir / "folders" / digest
        if not sftp_exists(sftp, remote / MANIFEST):
            tmp = remote.with_name(f"{digest}.{uuid.uuid4().hex}.part")
            self.execute(client, ["mkdir", "-p", str(tmp)])
            for rel in parse_manifest((folder / MANIFEST).read_text()):
                self.execute(client, ["mkdir", "-p", str((tmp / rel).parent)])
                sftp.put(str(folder / rel), str(tmp / rel))
            sftp.put(str(folder / MANIFEST), str(tmp / MANIFEST))
            # rename-if-absent: never remove a published folder another gate may be reading; a
            # second publisher of the same content (same manifest hash) just drops its copy
            code, tail = self.execute(client, ["sh", "-c", '{ mv -T "$1" "$2" 2>/dev/null || rm -rf "$1"; } && '
                                             'test -f "$2/MANIFEST.sha256"', "sh", str(tmp), str(remote)])
            if code != 0:
                raise RemotePermanent(f"could not publish {folder} on {self.host} as {remote}: {tail}")
        return str(remote)

    @contextmanager
    def session(self):
        """A connection for a few commands and transfers, closed after. The connection lost on the
        way (paramiko says so with SSHException or EOFError, from sftp too: "Server connection
        dropped") is RemoteUnavailable, as it is while connecting: the pod may be gone."""
        client = self.connect()
        try:
            yield client
        except (paramiko.SSHException, EOFError) as exc:
            raise RemoteUnavailable(f"connection to {self.host} lost: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise map_oserror(exc, self.host) from exc
        finally:
            client.close()

    # -- the gate ---------------------------------------------------------------------------
    def run_gate(self, call: GateCall) -> Path:
        check_replaceable(call.out)  # before any work: the user's files at --out are never replaced
        with self.session() as client:
            sftp = client.open_sftp()
            code_dir = self.ship_code(client, sftp)
            paths = {"data": self.ship_input(client, sftp, call.data)}
            for role in ("unlabeled", "config"):
                if getattr(call, role) is not None:
                    paths[role] = self.ship_input(client, sftp, getattr(call, role))
            for role in ("baseline", "encoder"):
                if getattr(call, role) is not None:
                    paths[role] = self.ship_folder(client, sftp, getattr(call, role))
            remote_out = self.workdir / "runs" / f"{call.gate}-{uuid.uuid4().hex[:12]}"
            argv = [self.python, "-m", "moola.cli", *call.argv(paths, str(remote_out))]
            if self.gate_timeout_s:  # ended on the host itself (coreutils), so nothing keeps running there
                argv = ["timeout", "--kill-after=30", f"{self.gate_timeout_s:.0f}", *argv]
            env = {"PYTHONPATH": str(code_dir) + (f":{self.site}" if self.site else ""), "PYTHONUNBUFFERED": "1"}
            commit = git_commit()
            if commit:
                env["MOOLA_GIT_COMMIT"] = commit
            log.info("remote %s: moola %s", self.host, " ".join(argv[3:]))
            code, tail = self.execute(client, argv, env=env, stream_as=call.gate)
            if self.gate_timeout_s and code in (124, 137):  # timeout's own codes: ended, killed after grace
                raise GateTimedOut(f"gate {call.gate} on {self.host} ran past its time limit of "
                                   f"{self.gate_timeout_s:.0f} s (MOOLA_GATE_TIMEOUT_S, the worker's gate_timeout_s) "
                                   f"and was ended there; last lines:\n{tail[-1500:]}")
            if code == 127 or "No module named" in tail:
                raise RemotePermanent(f"{self.host}: a dependency is missing for {self.python} "
                                      f"(run `moola remote check --install`):\n{tail}")
            raise_for_exit(code, call.gate, tail)
            self.fetch(sftp, str(remote_out), call.out)
            return call.out

    def fetch(self, sftp: paramiko.SFTPClient, remote_dir: str, out: Path) -> Path:
        """Fetch a gate folder: all files verified against its MANIFEST, then renamed into place."""
        remote = PurePosixPath(remote_dir)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        try:
            with sftp.open(str(remote / MANIFEST), "rb") as f:
                manifest_text = f.read().decode()
            entries = parse_manifest(manifest_text)
            for rel, digest in entries.items():
                local = (tmp / rel).resolve()
                if not local.is_relative_to(tmp.resolve()):
                    raise ModelFileError(f"{MANIFEST}: refusing {rel!r}, it escapes the folder")
                local.parent.mkdir(parents=True, exist_ok=True)
                seen = self._get(sftp, str(remote / rel), local)
                # the hash taken while the file arrived is trusted only when it matches; else re-read
                actual = seen if seen == digest else sha256_file(local)
                if actual != digest:
                    raise ModelFileError(f"{self.host}:{remote / rel}: sha256 {actual} does not match "
                                         f"{MANIFEST} ({digest}); the file changed after the gate wrote it")
            (tmp / MANIFEST).write_text(manifest_text)
            check_replaceable(out)  # only an absent, empty or earlier gate folder is replaced
            replace_folder(tmp, out)
            return out
        except FileNotFoundError as exc:
            raise RemotePermanent(f"{self.host}:{remote}: missing output ({exc})") from exc
        except (socket.error, EOFError, paramiko.SSHException) as exc:
            raise RemoteUnavailable(f"fetch from {self.host} cut off: {exc}") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


    def _get(self, sftp: paramiko.SFTPClient, remote: str, local: Path) -> str | None:
        """Small files over the open SFTP session; big ones with OpenSSH scp when it is installed
        (paramiko's SFTP tops out near 130 MB/s on one core, scp runs ~2.5x faster), hashed while
        they arrive. Returns that sha256, or None when the caller must hash the file itself.
        scp checks the host key against a known_hosts file holding the key paramiko verified."""
        size = sftp.stat(remote).st_size
        # scp runs in BatchMode: it cannot unlock an encrypted key, so those stay on SFTP
        if size < SCP_THRESHOLD or not shutil.which("scp") or self.key is None or self._passphrase:
            sftp.get(remote, str(local), prefetch=True)
            return None
        transport = sftp.get_channel().get_transport()
        key = transport.get_remote_server_key()
        with tempfile.NamedTemporaryFile("w", suffix=".known_hosts", delete=False) as kh:
            host = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
            kh.write(f"{host} {key.get_name()} {key.get_base64()}\n")
        try:
            argv = ["scp", "-q", "-P", str(self.port), "-i", str(self.key), "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={kh.name}", "-c", SCP_CIPHERS,
                    "-o", f"ConnectTimeout={int(self.timeout)}",
                    *(["-l", str(self.limit_kbit)] if self.limit_kbit else []), f"{self.user}@{self.host}:{remote}", str(local)]
            with tempfile.TemporaryFile() as err:
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
                seen = hash_while_written(local, proc)
                if proc.wait() != 0:
                    err.seek(0)
                    raise RemoteUnavailable(f"scp of {remote} from {self.host} failed: "
                                            f"{err.read().decode(errors='replace').strip()[-300:]}")
            return seen
        finally:
            os.unlink(kh.name)


SCP_THRESHOLD = 32 * 1024 * 1024
# AEAD ciphers only, AES-GCM first: with AES-NI (x86 servers, GPU pods) it costs less CPU than
# OpenSSH's default chacha20-poly1305, which pays for the sha256 check (bench/transfer.py).
SCP_CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"


# errno values that mean a local (or remote filesystem) problem no retry will fix
PERMANENT_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENOSPC,
                    errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTEMPTY}


def map_oserror(exc: OSError, host: str) -> Exception:
    """The one table for OSErrors met while running a gate remotely.

    ``socket.error`` is ``OSError``, so the type alone cannot tell a dropped connection from a
    full local disk: an error about a named file, or with a file-system errno, is permanent;
    connection errors, time-outs and errno-less socket errors are transient."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return RemoteUnavailable(f"{host}: connection failed: {exc}")
    if exc.filename is not None or exc.errno in PERMANENT_ERRNOS:
        where = f"{exc.filename}: " if exc.filename is not None else f"{host}: "
        return RemotePermanent(f"{where}{exc.strerror or exc} (a file problem; retrying will not help)")
    return RemoteUnavailable(f"{host}: transfer failed: {exc}")


def public_key_line(key: Path, passphrase: str | None = None) -> str:
    """'type base64' of a private key file: its ``.pub`` beside it, else derived from the key."""
    pub = Path(f"{key}.pub")
    try:
        if pub.is_file():
            return " ".join(pub.read_text().split()[:2])
        pkey = paramiko.PKey.from_path(str(key), passphrase=passphrase.encode() if passphrase else None)
    except paramiko.PasswordRequiredException:
        raise RemotePermanent(f"ssh key {key} is encrypted: set MOOLA_SSH_KEY_PASSPHRASE, or put its public "
                              f"half in {pub}") from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise RemotePermanent(f"ssh key {key} (MOOLA_SSH_KEY): cannot read it ({type(exc).__name__}: {exc})") from None
    return f"{pkey.get_name()} {pkey.get_base64()}"


def sftp_exists(sftp, path: PurePosixPath) -> bool:
    try:
        sftp.stat(str(path))
        return True
    except FileNotFoundError:
        return False

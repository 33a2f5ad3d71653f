"""SSH runner hardening (issue 10): never replace the user's files, local errors are permanent,
publishing a folder is rename-if-absent. Each test failed before its fix."""

from __future__ import annotations

import getpass
import os
import threading
import time

import pytest

from moola.cli.main import main
from moola.core.errors import ConfigError, RemotePermanent, RemoteUnavailable
from moola.core.seal import verify_folder
from moola.gates.call import GateCall
from moola.remote.retry import call_with_retry


def ssh_env(monkeypatch, sshd, workdir):
    env = {"MOOLA_SSH_HOST": "127.0.0.1", "MOOLA_SSH_PORT": str(sshd.port), "MOOLA_SSH_USER": getpass.getuser(),
           "MOOLA_SSH_KEY": str(sshd.client_key), "MOOLA_SSH_KNOWN_HOSTS": str(sshd.known_hosts),
           "MOOLA_REMOTE_WORKDIR": str(workdir), "MOOLA_REMOTE_PYTHON": os.sys.executable}
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def test_ssh_gate_refuses_an_out_folder_holding_other_files(sshd, sample_dir, tmp_path, monkeypatch, capsys):
    ssh_env(monkeypatch, sshd, tmp_path / "w")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    code = main(["gate", "run", "validate", "--data", str(sample_dir / "train.parquet"), "--out", str(mine),
                 "--runner", "ssh"])
    err = capsys.readouterr().err
    assert code == 2 and "not a gate's output" in err and "Traceback" not in err
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    assert not sshd.host(tmp_path / "w").exists()  # refused before any work on the host


def test_ssh_gate_refuses_the_working_directory(sshd, sample_dir, tmp_path, monkeypatch, capsys):
    ssh_env(monkeypatch, sshd, tmp_path / "w")
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "notes.txt").write_text("keep")
    monkeypatch.chdir(work)
    code = main(["gate", "run", "validate", "--data", str(sample_dir / "train.parquet"), "--out", ".",
                 "--runner", "ssh"])
    assert code == 2 and "working directory" in capsys.readouterr().err
    assert (work / "notes.txt").read_text() == "keep"


def test_runner_itself_refuses_a_foreign_out_folder(sshd, sample_dir, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(ConfigError, match="not a gate's output"):
        sshd.runner(tmp_path / "w").run_gate(GateCall(gate="validate", data=sample_dir / "train.parquet", out=out))
    assert (out / "x").read_text() == "x"


def test_an_earlier_gate_folder_is_replaced_whole(sshd, sample_dir, tmp_path):
    runner = sshd.runner(tmp_path / "w")
    call = GateCall(gate="validate", data=sample_dir / "train.parquet", out=tmp_path / "o")
    runner.run_gate(call)
    runner.run_gate(call)
    verify_folder(tmp_path / "o")  # strict: nothing left over from the first run


def test_a_local_file_problem_is_permanent_not_retried(sshd, tmp_path):
    data_dir = tmp_path / "data.parquet"
    data_dir.mkdir()  # a folder where a file is expected: IsADirectoryError is an OSError, like socket.error
    runner = sshd.runner(tmp_path / "w")
    t0 = time.monotonic()
    with pytest.raises(RemotePermanent, match="data.parquet"):
        call_with_retry(lambda: runner.run_gate(GateCall(gate="validate", data=data_dir, out=tmp_path / "o")),
                        retry_for=30, base=1.0, cap=2.0)
    assert time.monotonic() - t0 < 10  # failed at once instead of retrying for 30 s


def test_concurrent_publishers_never_remove_a_published_folder(sshd, tmp_path):
    """Eight gates ship the same baseline folder at once (all connected, released together by a
    barrier); an observer watches the published folder: once there, it must never vanish."""
    import hashlib

    from moola.core.seal import write_manifest
    folder = tmp_path / "baseline"  # a gate folder's shape: files plus their MANIFEST
    folder.mkdir()
    for i in range(6):
        (folder / f"part{i}.bin").write_bytes(os.urandom(200_000))
    write_manifest(folder)
    runner = sshd.runner(tmp_path / "w")
    digest = hashlib.sha256((folder / "MANIFEST.sha256").read_bytes()).hexdigest()
    published = sshd.host(tmp_path / "w" / "folders" / digest / "MANIFEST.sha256")  # on the host's disk
    clients = [runner.connect() for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    seen, errors, vanished, done = [], [], [], threading.Event()

    def publish(client):
        try:
            sftp = client.open_sftp()
            barrier.wait(30)
            remote = runner.ship_folder(client, sftp, folder)
            verify_folder(sshd.host(remote))  # what the gate does next: read it
            seen.append(remote)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(f"{type(exc).__name__}: {exc}")

    def observe():
        was_there = False
        while not done.is_set():
            there = published.exists()
            if was_there and not there:
                vanished.append(time.monotonic())
            was_there = was_there or there

    watcher = threading.Thread(target=observe)
    watcher.start()
    threads = [threading.Thread(target=publish, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    watcher.join(10)
    for c in clients:
        c.close()
    assert errors == [] and len(seen) == 8 and len(set(seen)) == 1
    assert vanished == []  # before the fix: every later publisher `rm -rf`ed the published folder
    leftovers = [p.name for p in sshd.host(tmp_path / "w" / "folders").iterdir() if p.name.endswith(".part")]
    assert leftovers == []


def test_an_encrypted_key_is_unlocked_by_its_passphrase(sshd, tmp_path):
    """An encrypted private key: without MOOLA_SSH_KEY_PASSPHRASE a clear permanent error, with it a login."""
    import subprocess
    key = tmp_path / "enc_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret pass", "-f", str(key)], check=True)
    with open(sshd.root / "authorized_keys", "a") as f:  # sshd reads it at each login
        f.write((tmp_path / "enc_key.pub").read_text())
    with pytest.raises(RemotePermanent, match="MOOLA_SSH_KEY_PASSPHRASE"):
        sshd.runner(tmp_path / "w", key=key).connect()
    client = sshd.runner(tmp_path / "w", key=key, passphrase="s3cret pass").connect()
    try:
        _, out, _ = client.exec_command("echo unlocked")
        assert out.read().decode().strip() == "unlocked"
    finally:
        client.close()


def test_a_connection_cut_mid_command_is_transient_not_a_gate_crash(tmp_path):
    """The pod's sshd killed while a gate runs: paramiko sees the channel close without an exit
    status; that is a lost connection (RemoteUnavailable: the unit can go to another pod), not exit
    -1 read as a crashed gate."""
    import threading

    from tests.fakes.sshd_server import make_sshd
    (tmp_path / "sshd-cut").mkdir()
    server = make_sshd(tmp_path / "sshd-cut")
    server.start()
    runner = server.runner(tmp_path / "work")
    client = runner.connect()
    got = {}

    def run():
        try:
            got["value"] = runner.execute(client, ["sleep", "30"])
        except Exception as exc:  # noqa: BLE001 (the test inspects it)
            got["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    server.stop()
    t.join(20)
    client.close()
    assert not t.is_alive()
    assert isinstance(got.get("error"), RemoteUnavailable), got
    assert "connection to 127.0.0.1 lost" in str(got["error"])


def test_a_pod_gone_mid_upload_is_transient_not_a_paramiko_error(tmp_path, sample_dir, monkeypatch):
    """Found by bench/faults.py (crash-pod): the pod's machine died while the run uploaded the gate's
    data; sftp's close of the file then read EOF and raised paramiko's own SSHException ("Server
    connection dropped"), which escaped as is and failed the run instead of letting it judge the pod
    lost and move the gate. The sshd here dies at the same point: the uploaded file's close."""
    import os
    import signal
    import threading

    import paramiko

    from moola.gates.call import GateCall
    from tests.fakes.sshd_server import descendants, make_sshd
    (tmp_path / "sshd-gone").mkdir()
    server = make_sshd(tmp_path / "sshd-gone")
    server.start()
    runner = server.runner(tmp_path / "work")
    real_close, killer = paramiko.SFTPFile.close, []

    def close(self):
        if not killer:  # the pod's machine freezes, then dies, while this close waits for its answer
            for pid in descendants(server.proc.pid):
                os.kill(pid, signal.SIGSTOP)
            killer.append(threading.Timer(0.5, server.stop))
            killer[0].start()
        return real_close(self)
    monkeypatch.setattr(paramiko.SFTPFile, "close", close)
    call = GateCall(gate="validate", data=sample_dir / "train.parquet", out=tmp_path / "out", device="cpu", seed=17)
    with pytest.raises(RemoteUnavailable, match="127.0.0.1"):
        runner.run_gate(call)
    killer[0].join()
    assert not (tmp_path / "out").exists()

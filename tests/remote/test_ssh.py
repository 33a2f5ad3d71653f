"""The ssh runner against a real loopback sshd: end to end, retries, host keys, credentials,
checksums."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from moola.cli.main import main
from moola.core.errors import ConfigError, HostKeyMismatch, ModelFileError, RemotePermanent
from moola.core.seal import verify_folder
from moola.gates.call import GateCall
from moola.gates.result import read_result
from moola.remote.retry import call_with_retry
from moola.remote.runner import LocalRunner
from tests.fakes.pod_image import wheel_from_installed

SMALL = {"fit": {"epochs": 4}, "model": {"hidden": 16}}


@pytest.fixture
def small_config(tmp_path) -> Path:
    p = tmp_path / "small.json"
    p.write_text(json.dumps(SMALL))
    return p


def fetch_once(runner, remote_dir, out):
    """One connection, one verified fetch of ``remote_dir`` into ``out``."""
    client = runner.connect()
    try:
        return runner.fetch(client.open_sftp(), str(remote_dir), out)
    finally:
        client.close()


def call(sample_dir, out, gate="baseline", config=None, **kw) -> GateCall:
    return GateCall(gate=gate, data=sample_dir / "train.parquet", out=out, config=config, device="cpu", seed=17, **kw)


def test_remote_gate_matches_local_run(sshd, sample_dir, small_config, tmp_path):
    remote_out = sshd.runner(tmp_path / "remote").run_gate(call(sample_dir, tmp_path / "r", config=small_config))
    local_out = LocalRunner().run_gate(call(sample_dir, tmp_path / "l", config=small_config))
    verify_folder(remote_out)
    r, loc = read_result(remote_out), read_result(local_out)
    assert r.metrics == loc.metrics and r.metrics.n == 20
    assert r.config == loc.config and r.config["fit"]["epochs"] == 4
    assert (remote_out / "model.safetensors").read_bytes() == (local_out / "model.safetensors").read_bytes()
    # the remote ran the shipped bundle: the host has its own disk, where this checkout (and so the
    # installed package) is not found, nor the inputs but as uploaded
    code_dirs = list(sshd.host(tmp_path / "remote" / "code").iterdir())
    assert any(d.is_dir() and (d / "moola" / "cli" / "main.py").is_file() for d in code_dirs)
    client = sshd.runner(tmp_path / "remote").connect()
    try:
        for probe in ("import moola", f"open({str(sample_dir / 'train.parquet')!r})"):
            _, out, err = client.exec_command(f"{sys.executable} -c {shlex.quote(probe)}")
            assert out.channel.recv_exit_status() == 1, probe
            assert ("No module named 'moola'" if "import" in probe else "No such file") in err.read().decode()
    finally:
        client.close()


def test_inputs_and_code_upload_once(sshd, sample_dir, tmp_path):
    runner = sshd.runner(tmp_path / "w")
    runner.run_gate(call(sample_dir, tmp_path / "a", gate="validate"))
    host = sshd.host(tmp_path / "w")
    inputs = sorted((host / "inputs").iterdir())
    mtimes = [p.stat().st_mtime_ns for p in inputs]
    runner.run_gate(call(sample_dir, tmp_path / "b", gate="validate"))
    assert sorted((host / "inputs").iterdir()) == inputs
    assert [p.stat().st_mtime_ns for p in inputs] == mtimes
    assert len([p for p in (host / "code").iterdir() if p.is_dir()]) == 1


def test_sshd_down_then_up_is_retried(sshd, sample_dir, tmp_path):
    sshd.stop()
    timer = threading.Timer(4.0, sshd.start)
    timer.start()
    t0, tries = time.monotonic(), []

    def attempt():
        tries.append(time.monotonic())
        return sshd.runner(tmp_path / "w").run_gate(call(sample_dir, tmp_path / "o", gate="validate"))
    try:
        out = call_with_retry(attempt, retry_for=60, base=1.0, cap=4.0)
    finally:
        timer.join()
    assert time.monotonic() - t0 >= 3.5 and len(tries) >= 2  # refused while down, retried until up
    assert read_result(out).status == "passed"


def test_wrong_pinned_key_fails_at_once_naming_the_key(sshd, sample_dir, tmp_path):
    runner = sshd.runner(tmp_path / "w", known_hosts=None, pinned_sha256="SHA256:" + "A" * 43)
    t0 = time.monotonic()
    with pytest.raises(HostKeyMismatch) as exc:
        call_with_retry(lambda: runner.run_gate(call(sample_dir, tmp_path / "o", gate="validate")), retry_for=60)
    assert time.monotonic() - t0 < 15
    assert sshd.fingerprint in str(exc.value) and "MOOLA_SSH_HOST_KEY_SHA256" in str(exc.value)


def test_pinned_fingerprint_alone_is_enough(sshd, sample_dir, tmp_path):
    runner = sshd.runner(tmp_path / "w", known_hosts=None, pinned_sha256=sshd.fingerprint)
    assert read_result(runner.run_gate(call(sample_dir, tmp_path / "o", gate="validate"))).status == "passed"


def test_changed_host_key_is_refused(sshd, tmp_path):
    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))  # any other ed25519 key
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {other.get_base64()}\n")
    with pytest.raises(HostKeyMismatch, match="CHANGED"):
        sshd.runner(tmp_path / "w", known_hosts=kh).connect()


def test_no_host_key_source_is_refused(sshd, tmp_path):
    with pytest.raises(ConfigError, match="never trusted blindly"):  # exit 2: a setting to give
        sshd.runner(tmp_path / "w", known_hosts=None, pinned_sha256=None)


def test_bad_credentials_are_permanent_and_not_retried(sshd, sample_dir, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    runner = sshd.runner(tmp_path / "w", key=tmp_path / "stranger")
    t0 = time.monotonic()
    with pytest.raises(RemotePermanent, match="authentication failed"):
        call_with_retry(lambda: runner.run_gate(call(sample_dir, tmp_path / "o", gate="validate")), retry_for=60)
    assert time.monotonic() - t0 < 10


def test_corrupted_remote_file_is_caught_and_leaves_nothing(sshd, sample_dir, tmp_path):
    runner = sshd.runner(tmp_path / "w")
    runner.run_gate(call(sample_dir, tmp_path / "o", gate="validate"))
    run_dir = next(sshd.host(tmp_path / "w" / "runs").iterdir())
    with open(run_dir / "result.json", "a") as f:
        f.write(" ")  # changed on the host after MANIFEST.sha256 was written
    with pytest.raises(ModelFileError, match="does not match"):
        fetch_once(runner, tmp_path / "w" / "runs" / run_dir.name, tmp_path / "again")
    assert not (tmp_path / "again").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".again")] == []


def test_manifest_escaping_the_folder_is_refused(sshd, tmp_path):
    evil = tmp_path / "evil"  # a folder on the host
    sshd.host(evil).mkdir(parents=True)
    (sshd.host(evil) / "MANIFEST.sha256").write_text(f"{'0' * 64}  ../../etc/passwd\n")
    with pytest.raises(ModelFileError, match="refusing"):
        fetch_once(sshd.runner(tmp_path / "w"), evil, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_invalid_data_remotely_is_a_data_error(sshd, sample_frame, write_frame, tmp_path, capsys, monkeypatch):
    bad = write_frame(sample_frame.drop(columns=["label"]))
    env = {"MOOLA_SSH_HOST": "127.0.0.1", "MOOLA_SSH_PORT": str(sshd.port), "MOOLA_SSH_USER": getpass.getuser(),
           "MOOLA_SSH_KEY": str(sshd.client_key), "MOOLA_SSH_KNOWN_HOSTS": str(sshd.known_hosts),
           "MOOLA_REMOTE_WORKDIR": str(tmp_path / "w"), "MOOLA_REMOTE_PYTHON": os.sys.executable}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(["gate", "run", "validate", "--data", str(bad), "--out", str(tmp_path / "o"), "--runner", "ssh"])
    err = capsys.readouterr().err
    assert code == 2 and "missing required column 'label'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_remote_check_reports_versions(sshd, tmp_path):
    from moola.remote.check import remote_check
    report = remote_check(sshd.runner(tmp_path / "w"))
    assert report["missing"] == [] and report["packages"]["sktime"].startswith("1.")
    assert report["cuda"] is False
    bad = remote_check(sshd.runner(tmp_path / "w", python="python3"))  # the system Python lacks torch
    assert "torch>=2.6" in bad["missing"]  # the requirement, as pip takes it


# paramiko's own prefetch thread dies with EOFError when the socket is cut under it: expected here
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_connection_cut_during_fetch_is_retried_and_leaves_no_partial_folder(sshd, tmp_path, monkeypatch):
    import socket as _socket

    from moola.core.errors import RemoteUnavailable
    from moola.core.seal import write_manifest
    from moola.remote import ssh as ssh_mod
    monkeypatch.setattr(ssh_mod, "SCP_THRESHOLD", 1 << 40)  # keep the transfer inside this process
    folder = tmp_path / "gate"  # on the host
    sshd.host(folder).mkdir(parents=True)
    (sshd.host(folder) / "big.bin").write_bytes(os.urandom(120 * 1024 * 1024))
    write_manifest(sshd.host(folder))
    runner = sshd.runner(tmp_path / "w")
    client = runner.connect()
    sock = client.get_transport().sock
    threading.Timer(0.15, lambda: sock.shutdown(_socket.SHUT_RDWR)).start()
    with pytest.raises(RemoteUnavailable):
        runner.fetch(client.open_sftp(), str(folder), tmp_path / "out")
    client.close()
    assert not (tmp_path / "out").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out")] == []

    out = call_with_retry(lambda: fetch_once(runner, folder, tmp_path / "out"), retry_for=30)
    assert (out / "big.bin").read_bytes() == (sshd.host(folder) / "big.bin").read_bytes()


def test_sshd_killed_during_fetch_is_retried_and_leaves_no_partial_folder(sshd, tmp_path):
    """The whole sshd dies mid-transfer (master and the per-connection processes serving the
    copy) and comes back 2 s later: the retrying fetch completes, verified, with no leftovers."""
    from moola.core.seal import write_manifest
    folder = tmp_path / "gate"  # on the host
    sshd.host(folder).mkdir(parents=True)
    (sshd.host(folder) / "big.bin").write_bytes(os.urandom(100 * 1024 * 1024))  # >= SCP_THRESHOLD: the scp path
    write_manifest(sshd.host(folder))
    out_root = tmp_path / "local"
    out_root.mkdir()
    runner = sshd.runner(tmp_path / "w", limit_kbit=400_000)  # ~50 MB/s: a 2 s window to kill in
    seen_partial: list[int] = []

    def kill_mid_transfer():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = [p for d in out_root.glob(".out.*.part") for p in d.glob("big.bin")]
            size = parts[0].stat().st_size if parts else 0
            if size > 10 * 1024 * 1024:
                seen_partial.append(size)
                subprocess.run(["pkill", "-KILL", "-P", str(sshd.proc.pid)], check=False)  # per-connection
                sshd.stop()
                time.sleep(2)
                sshd.start()
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_mid_transfer)
    killer.start()
    attempts = []

    def attempt():
        attempts.append(time.monotonic())
        return fetch_once(runner, folder, out_root / "out")
    try:
        out = call_with_retry(attempt, retry_for=60)
    finally:
        killer.join()
    assert seen_partial and seen_partial[0] < 100 * 1024 * 1024, "the kill did not land mid-transfer"
    assert len(attempts) >= 2
    assert (out / "big.bin").read_bytes() == (sshd.host(folder) / "big.bin").read_bytes()
    verify_folder(out)
    assert sorted(p.name for p in out_root.iterdir()) == ["out"]  # no partial folder left behind


def test_remote_check_install_adds_what_is_missing(sshd, tmp_path):
    """A remote Python that lacks safetensors: `--install` pip-installs it (from a local wheel, as
    the venv's pip.conf says), then the probe finds it. Everything else comes from this venv."""
    import site
    import sys as _sys

    from moola.remote.check import remote_check
    host = sshd.host  # the remote Python, its packages and wheels live on the host's disk
    wheels = tmp_path / "wheels"
    import safetensors
    host(wheels).mkdir(parents=True)
    wheel_from_installed("safetensors", host(wheels))  # from this venv's files: no package index
    venv = tmp_path / "remote_venv"
    subprocess.run([_sys.executable, "-m", "venv", "--without-pip", str(host(venv))], check=True)
    farm = tmp_path / "farm"  # this venv's packages, all but safetensors (and pip comes along)
    host(farm).mkdir()
    ours = Path(site.getsitepackages()[0])
    for entry in ours.iterdir():
        if not entry.name.startswith(("safetensors", "__editable__", "_virtualenv")) and not entry.name.endswith(".pth"):
            (host(farm) / entry.name).symlink_to(entry)
    remote_site = next((host(venv) / "lib").glob("python3*/site-packages"))
    (remote_site / "farm.pth").write_text(f"{farm}\n")
    (host(venv) / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {wheels}\n")
    runner = sshd.runner(tmp_path / "w", python=str(venv / "bin" / "python"))

    before = remote_check(runner)
    assert before["missing"] == ["safetensors"] and before["packages"]["torch"] is not None
    after = remote_check(runner, install=True)
    assert after["installed"] == ["safetensors"] and after["missing"] == []
    assert after["packages"]["safetensors"] == safetensors.__version__
    assert any(remote_site.glob("safetensors-*.dist-info"))  # installed into the remote's own Python


def test_a_gate_past_its_time_limit_is_ended_on_the_host_and_said(sshd, sample_dir, small_config, tmp_path):
    """MOOLA_GATE_TIMEOUT_S (the worker's gate_timeout_s): a hung gate must not bill a pod for as long as
    the heartbeats keep its watchdog quiet. The gate is ended on the host (coreutils `timeout`), not
    merely abandoned by this side, and the error names the limit."""
    from moola.core.errors import GateTimedOut
    runner = sshd.runner(tmp_path / "remote")
    runner.gate_timeout_s = 1  # a baseline gate takes seconds here
    t0 = time.monotonic()
    with pytest.raises(GateTimedOut, match="gate baseline on 127.0.0.1 ran past its time limit of 1 s"):
        runner.run_gate(call(sample_dir, tmp_path / "r", config=small_config))
    assert time.monotonic() - t0 < 30 and not (tmp_path / "r").exists()
    left = subprocess.run(["pgrep", "-f", "--", f"--out {tmp_path / 'remote'}/runs/baseline-"], capture_output=True)
    assert left.returncode == 1, left.stdout  # no gate process left on the host

"""The gates flow with the ssh runner against the loopback sshd, which is down at first."""

from __future__ import annotations

import getpass
import json
import sys
import threading

from tests.flows.conftest import CONFIG, assert_expected_decision, jsonl


def test_flow_over_ssh_retries_until_the_host_is_up(prefect_server, sshd, sample_dir, tmp_path, monkeypatch,  # noqa: F811
                                                    capfd, caplog):
    env = {"MOOLA_SSH_HOST": "127.0.0.1", "MOOLA_SSH_PORT": str(sshd.port), "MOOLA_SSH_USER": getpass.getuser(),
           "MOOLA_SSH_KEY": str(sshd.client_key), "MOOLA_SSH_KNOWN_HOSTS": str(sshd.known_hosts),
           "MOOLA_REMOTE_WORKDIR": str(tmp_path / "remote"), "MOOLA_REMOTE_PYTHON": sys.executable,
           "MOOLA_SSH_TIMEOUT": "3"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from moola_flows.gates import gates
    sshd.stop()
    timer = threading.Timer(4.0, sshd.start)
    timer.start()
    art = tmp_path / "art"
    try:
        state = gates(data=str(sample_dir / "train.parquet"), unlabeled=str(sample_dir / "unlabeled.parquet"),
                      runner="ssh", config=CONFIG, artifacts=str(art), return_state=True)
    finally:
        timer.join()
    lines = jsonl(art)
    decision = [x for x in lines if x["kind"] == "decision"][-1]["decision"]
    assert_expected_decision(decision)  # the same as here: the gates' code and inputs went over ssh
    assert {x["gate"] for x in lines if x["kind"] == "gate_result"} == {
        "validate", "baseline", "minirocket", "pretrain", "transfer", "augment"}
    assert state.is_completed()
    # it really ran over ssh: the remote workdir holds the shipped code and the runs
    remote = sshd.host(tmp_path / "remote")  # the host's own disk
    assert (remote / "code").is_dir() and len(list((remote / "runs").iterdir())) == 6
    validate = next(x for x in lines if x["kind"] == "gate_result" and x["gate"] == "validate")
    assert validate["result"]["status"] == "passed"
    json.dumps(lines)
    # Prefect logs the retries to its console handler or, depending on what configured logging
    # first in this process, through the standard logging tree: read both
    printed = "".join(capfd.readouterr()) + "\n".join(r.getMessage() for r in caplog.records)
    assert "Task run failed with exception: RemoteUnavailable('cannot reach" in printed
    assert "Retry 1/8" in printed

"""Settings: `.env.example` copied to `.env` as is must give the documented defaults."""

from __future__ import annotations

import re
from pathlib import Path

from moola.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def test_every_setting_is_in_env_example_and_the_copy_gives_defaults(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    # listed, set or commented out with its default (`# RUNPOD_CLOUD_TYPE=SECURE`)
    listed = set(re.findall(r"^(?:# )?([A-Z0-9_]+)=", EXAMPLE.read_text(), flags=re.M))
    assert {n.upper() for n in Settings.model_fields} <= listed
    s = Settings(_env_file=str(EXAMPLE))
    defaults = Settings(_env_file=None)
    # empty values (`MOOLA_SSH_KNOWN_HOSTS=`) mean "not set", not Path('') or a parse error
    assert s.moola_ssh_known_hosts is None and s.moola_fetch_limit_kbit is None and s.runpod_api_key is None
    assert s.moola_ssh_key == Path.home() / ".ssh" / "id_ed25519"  # `~` expanded, as a shell would
    # apart from the key's path, the example shows the defaults
    assert s.model_dump() == defaults.model_dump() | {"moola_ssh_key": s.moola_ssh_key}


def test_secrets_never_show_in_the_repr(monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_very_secret")
    s = Settings(_env_file=None)
    assert "rp_very_secret" not in repr(s) and "rp_very_secret" not in str(s.model_dump())
    assert s.runpod_api_key.get_secret_value() == "rp_very_secret"


def test_the_suite_reads_no_env_file_and_a_user_does(tmp_path, monkeypatch):
    """A `.env` in the checkout (MOOLA_RUNNER=runpod, as a user writes one) must not send the suite's
    gates to billed pods: tests/conftest.py sets MOOLA_ENV_FILE empty. Without it, `.env` is read."""
    import os

    from moola.settings import load_settings
    (tmp_path / ".env").write_text("MOOLA_RUNNER=runpod\n")
    monkeypatch.chdir(tmp_path)
    assert os.environ["MOOLA_ENV_FILE"] == "" and load_settings().moola_runner == "here"
    monkeypatch.delenv("MOOLA_ENV_FILE")
    assert load_settings().moola_runner == "runpod"
    (tmp_path / "other.env").write_text("MOOLA_RUNNER=ssh\n")
    monkeypatch.setenv("MOOLA_ENV_FILE", str(tmp_path / "other.env"))
    assert load_settings().moola_runner == "ssh"


def test_the_workers_lease_folder_is_absolute_whatever_moola_artifacts_says(tmp_path, monkeypatch):
    """A relative MOOLA_ARTIFACTS handed relative lease paths to the run's process, which may start in
    another folder (and then could not end a lost pod through its record)."""
    from moola_flows.worker import leases_dir
    monkeypatch.chdir(tmp_path)
    got = leases_dir(Settings(_env_file=None, moola_artifacts="art"))
    assert got == tmp_path / "art" / "pods" / "worker" and got.is_absolute()

"""Settings of the orchestrating machine, from the environment and ``.env`` (pydantic-settings).

Built once at an entry point, never at import. Secrets are SecretStr: never printed or logged.
Every field is listed in ``.env.example`` (the pod shape commented out: the worker takes it from job variables).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from moola.core.errors import config_error
from moola.pods.api import DEFAULT_CLOUD_TYPE, DEFAULT_GPU_TYPES, DEFAULT_IMAGE, DEFAULT_POD_PYTHON, DEFAULT_VOLUME_GB
from moola.registry.store import Registry
from moola.remote.kinds import DEFAULT_RUNNER, RunnerKind

ENV_FILE_VAR = "MOOLA_ENV_FILE"  # another settings file than ./.env; set and empty: none (the test suite)


def env_file() -> str | None:
    return os.environ.get(ENV_FILE_VAR, ".env") or None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True,
                                      case_sensitive=False)

    def __init__(self, **values):
        values.setdefault("_env_file", env_file())
        super().__init__(**values)

    moola_runner: RunnerKind = DEFAULT_RUNNER
    moola_ssh_host: str | None = None
    moola_ssh_port: int = Field(22, ge=1, le=65535)
    moola_ssh_user: str = "root"
    moola_ssh_key: Path | None = Field(None, description="private key file")
    moola_ssh_known_hosts: Path | None = Field(None, description="known_hosts file with the host's key")
    moola_ssh_host_key_sha256: str | None = Field(None, description="pinned fingerprint, 'SHA256:...'")
    moola_ssh_timeout: float = Field(15.0, description="connect, banner and auth timeouts (s)")
    moola_fetch_limit_kbit: int | None = Field(None, gt=0, description="cap big fetches at this many Kbit/s (scp -l)")
    moola_remote_workdir: str = "/workspace/moola"
    moola_pod_lost_after_s: float = Field(20.0, gt=0, le=3600, description="a pod RunPod still reports RUNNING "
                                          "is lost once ssh stayed unreachable this long (a restarting sshd is not)")
    moola_gate_timeout_s: float | None = Field(None, gt=0, allow_inf_nan=False,
                                               description="a gate on an ssh host or pod is ended after this many "
                                               "seconds (the runpod worker sets it from its gate_timeout_s)")
    moola_remote_python: str = Field("python3", description="interpreter on the MOOLA_SSH_HOST host")
    moola_pod_python: str = Field(DEFAULT_POD_PYTHON, description="interpreter with torch on a RunPod pod")
    moola_ssh_key_passphrase: SecretStr | None = Field(None, description="passphrase of an encrypted MOOLA_SSH_KEY")
    moola_pod_wheelhouse: Path | None = Field(None, description="local folder of wheels pods install from "
                                              "(no index needed); unset: pods install from PyPI")
    moola_artifacts: Path = Field(Path("artifacts"), description="registry root: models, registry.json, JSONL")
    moola_registry_lock_timeout: float = Field(60.0, gt=0, description="seconds to wait for the registry lock")
    runpod_api_key: SecretStr | None = None
    runpod_pod_id: str | None = None
    runpod_gpu_types: str = ",".join(DEFAULT_GPU_TYPES)
    runpod_image: str = DEFAULT_IMAGE
    runpod_cloud_type: str = DEFAULT_CLOUD_TYPE
    runpod_volume_gb: int = DEFAULT_VOLUME_GB
    runpod_keep_alive: bool = False
    runpod_wait_timeout: float = 600.0

    @field_validator("moola_ssh_key", "moola_ssh_known_hosts", "moola_artifacts", "moola_pod_wheelhouse")
    @classmethod
    def _expand_home(cls, v: Path | None) -> Path | None:
        return None if v is None else v.expanduser()  # `~/.ssh/id_ed25519` as written in .env


def load_settings() -> Settings:
    """Settings from the environment and ``.env``; a bad value is a ConfigError naming it."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        raise config_error(exc, where="settings (environment or .env): ") from exc


def registry_from_settings(settings: Settings | None = None, root: str | Path | None = None):
    """The Registry at ``root`` if given, else at MOOLA_ARTIFACTS (environment or .env)."""
    s = settings or load_settings()
    return Registry(Path(root) if root is not None else s.moola_artifacts, s.moola_registry_lock_timeout)

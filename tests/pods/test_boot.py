"""A created pod's identity and start command (moola/pods/boot.py): the host key the pod is
given is the one SSH pins, every value survives the runpod SDK's unescaped GraphQL text, and a
value that would not is refused before any request."""

from __future__ import annotations

import base64
import gzip
import re
import subprocess

import pytest
from runpod.api.mutations.pods import generate_pod_deployment_mutation

from moola.core.errors import ConfigError
from moola.pods.api import PodLease, PodSpec
from moola.pods.boot import (
    START_COMMAND,
    boot_env,
    fingerprint,
    graphql_safe,
    identity_from_env,
    new_identity,
    public_from_private,
)


def test_an_identity_is_an_ed25519_key_whose_fingerprint_openssh_agrees_with(tmp_path):
    ident = new_identity()
    assert ident.public.startswith("ssh-ed25519 ") and "OPENSSH PRIVATE KEY" in ident.private
    (tmp_path / "k").write_text(ident.private)
    (tmp_path / "k").chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(tmp_path / "k")], capture_output=True, text=True,
                             check=True).stdout.split()
    assert " ".join(derived[:2]) == ident.public == public_from_private(ident.private)
    (tmp_path / "k.pub").write_text(ident.public + "\n")
    printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert printed == fingerprint(ident.public) == ident.fingerprint
    assert new_identity().public != ident.public  # one per pod


def test_the_boot_env_goes_through_the_sdks_mutation_text_unchanged_and_names_the_pods_identity():
    ident = new_identity()
    env = boot_env(ident, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@laptop \"quoted\"",
                   "/workspace/moola", 900, 600)
    assert env["PUBLIC_KEY"] == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"  # the comment is dropped
    text = generate_pod_deployment_mutation("moola-run", "img:tag", "NVIDIA H200", env=env, docker_args=START_COMMAND)
    parsed = dict(re.findall(r'\{ key: "([^"]*)", value: "([^"]*)" \}', text))
    assert parsed == env and re.search(r'dockerArgs: "([^"]*)"', text).group(1) == START_COMMAND
    assert identity_from_env([f"{k}={v}" for k, v in env.items()]) == ident
    assert identity_from_env(env) == ident and identity_from_env(["PATH=/bin"]) is None
    boot = gzip.decompress(base64.b64decode(env["MOOLA_BOOT"])).decode()
    assert boot.rstrip().endswith("exec /start.sh")
    assert "--idle-stop-s 900 --boot-grace-s 600" in boot and "unset MOOLA_HOST_KEY" in boot
    assert "def end_pod(" in gzip.decompress(base64.b64decode(env["MOOLA_WATCHDOG"])).decode()


@pytest.mark.parametrize("bad", ['img"tag', "img\ntag", "img\\tag"])
def test_a_value_the_sdk_would_paste_broken_is_refused(bad):
    with pytest.raises(ConfigError, match="quote, backslash or control character"):
        graphql_safe("pod image", bad)


def test_a_pod_image_with_a_quote_fails_before_any_request():
    class NoCalls:
        def __getattr__(self, name):
            raise AssertionError(f"the API was called: {name}")
    spec = PodSpec(gpu_types=["NVIDIA H200"], image='evil" , gpuCount: 8, x: "', client_public="ssh-ed25519 AAAA")
    with pytest.raises(ConfigError, match="pod image"):
        PodLease(NoCalls(), spec).acquire()


def test_creating_a_pod_without_an_ssh_public_key_is_a_config_error():
    with pytest.raises(ConfigError, match="MOOLA_SSH_KEY"):
        PodLease(object(), PodSpec(gpu_types=["NVIDIA H200"])).acquire()

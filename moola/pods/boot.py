"""What a pod moola creates is given at creation, so that SSH can trust it and it guards itself.

RunPod's images delete their SSH host keys at build and make new ones at every container start,
and no RunPod API returns a host key: a pod's key cannot be learnt, only given. So moola makes
an ed25519 host key per pod and hands it over in the create request, with its own start command:

    env         MOOLA_HOST_KEY   the private half (base64)    - installed, then unset
                MOOLA_WATCHDOG   moola/pods/watchdog.py (gzip+base64), stdlib only
                MOOLA_BOOT       the start script below (gzip+base64)
                PUBLIC_KEY       the public half of MOOLA_SSH_KEY: RunPod's /start.sh starts sshd
                                 only when it is set, and admits that key
    dockerArgs  bash -c '... base64 -d | gunzip > /moola-boot.sh; exec bash /moola-boot.sh'

The start script writes the host key into /etc/ssh (RunPod's /start.sh keeps a key that exists),
lets sshd offer only that key, starts the watchdog *from PID 1's environment* (an SSH session
never sees RUNPOD_API_KEY: it sits in /etc/rp_environment, sourced after ~/.bashrc's early return
for non-interactive shells), removes its variables and ends with ``exec /start.sh``, the image's own
start. Every connection to the pod then pins exactly the public half (``PodIdentity.public``).

The runpod SDK pastes ``env`` values and ``dockerArgs`` into the GraphQL text without escaping:
every value sent is checked by ``graphql_safe`` (base64 and the command below are).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from moola.core.errors import ConfigError

IMAGE_START = "/start.sh"  # the CMD of RunPod's images: our start command must end by exec-ing it
BOOT_SCRIPT_PATH = "/moola-boot.sh"
WATCHDOG_PATH = "/moola-watchdog.py"
BOOT_GRACE_S = 900  # a pod nobody heartbeats within this long of its start terminates itself
HOST_KEY_ENV, BOOT_ENV, WATCHDOG_ENV = "MOOLA_HOST_KEY", "MOOLA_BOOT", "MOOLA_WATCHDOG"


@dataclass(frozen=True)
class PodIdentity:
    """A pod's SSH host key: ``private`` (OpenSSH PEM, given to the pod only) and ``public``
    (``ssh-ed25519 AAAA...``: what every connection pins)."""
    private: str
    public: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


def new_identity() -> PodIdentity:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return PodIdentity(private, public.decode())


def public_from_private(pem: str) -> str:
    """``ssh-ed25519 AAAA...`` of an OpenSSH private key (a resumed pod's key, read back from its env)."""
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_ssh_private_key(pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def fingerprint(public: str) -> str:
    """'SHA256:...' as OpenSSH prints it, of a ``type base64`` public key line."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _pack(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def boot_script(workdir: str, idle_stop_s: float, boot_grace_s: float) -> str:
    """The pod's start script (bash, run as PID 1 by dockerArgs). Values are quoted here; the pod's
    own id comes from its environment at start."""
    q = shlex.quote
    key = "/etc/ssh/ssh_host_ed25519_key"
    hb = f'{q(workdir)}/heartbeat/"$RUNPOD_POD_ID"'
    return f"""set -eu
umask 077
mkdir -p /etc/ssh/sshd_config.d {q(workdir)}/heartbeat
printf %s "${HOST_KEY_ENV}" | base64 -d > {key}
ssh-keygen -y -f {key} > {key}.pub
# only this key is offered: the one the orchestrator pins (the image's start adds others for nobody)
printf 'HostKey %s\\n' {key} > /etc/ssh/sshd_config.d/00-moola-hostkey.conf
printf %s "${WATCHDOG_ENV}" | base64 -d | gunzip > {WATCHDOG_PATH}
unset {HOST_KEY_ENV} {WATCHDOG_ENV} {BOOT_ENV}
py=$(command -v python3 || command -v python)
# started here, in PID 1's environment (RUNPOD_API_KEY, RUNPOD_POD_ID), before any SSH connection
setsid "$py" {WATCHDOG_PATH} --heartbeat {hb} --idle-stop-s {idle_stop_s:g} --boot-grace-s {boot_grace_s:g} \\
  --status {hb}.guard > {hb}.log 2>&1 < /dev/null &
exec {IMAGE_START}
"""


# No `"`, backslash or newline: the SDK pastes this into a GraphQL string as is.
START_COMMAND = (f"bash -c 'printf %s ${BOOT_ENV} | base64 -d | gunzip > {BOOT_SCRIPT_PATH}; "
                 f"exec bash {BOOT_SCRIPT_PATH}'")


def boot_env(identity: PodIdentity, client_public: str, workdir: str, idle_stop_s: float,
             boot_grace_s: float = BOOT_GRACE_S) -> dict[str, str]:
    """The create request's ``env`` for a pod with this identity, admitting ``client_public``."""
    watchdog = (Path(__file__).with_name("watchdog.py")).read_text()
    env = {HOST_KEY_ENV: base64.b64encode(identity.private.encode()).decode(),
           WATCHDOG_ENV: _pack(watchdog), BOOT_ENV: _pack(boot_script(workdir, idle_stop_s, boot_grace_s)),
           "PUBLIC_KEY": " ".join(client_public.split()[:2])}  # type and key: a comment may hold anything
    for k, v in env.items():
        graphql_safe(k, v)
    return env


def identity_from_env(env) -> PodIdentity | None:
    """The identity a pod was created with, from the pod's ``env`` as the API returns it (a list of
    ``KEY=value`` strings or a dict): a resumed pod keeps its env, so it keeps its host key."""
    if isinstance(env, dict):
        items = env.items()
    else:
        items = (str(e).split("=", 1) for e in env or [] if "=" in str(e))
    for k, v in items:
        if k == HOST_KEY_ENV:
            private = base64.b64decode(v).decode()
            return PodIdentity(private, public_from_private(private))
    return None


_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')


def graphql_safe(what: str, value: str) -> str:
    """``value`` unchanged, or ConfigError: the runpod SDK pastes it into GraphQL text unescaped,
    where a quote, backslash or control character would break (or change) the request."""
    if _UNSAFE.search(str(value)):
        raise ConfigError(f"{what}: {str(value)[:60]!r} holds a quote, backslash or control character, which the "
                          "RunPod SDK would paste unescaped into its request")
    return value

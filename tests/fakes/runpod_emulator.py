"""RunPod as moola meets it, emulated on this machine: the GraphQL API (for the real ``runpod``
SDK, through RUNPOD_API_BASE_URL) and pods that behave like containers of RunPod's images.

Each pod is a process tree in its own mount and PID namespaces (``unshare -m -p -f``) on an
overlay of this machine's root, so it has its own disk (wiped on stop, as RunPod's container disk
is), its own ``/etc/ssh``, ``/root`` and ``/workspace``, and its start command as PID 1:

- the image: RunPod's ``/start.sh`` reduced to what moola meets (``container-template/start.sh``):
  sshd starts only when ``PUBLIC_KEY`` is set, after generating every host key that is missing
  (the image ships none), and the container's variables go to ``/etc/rp_environment``, sourced at
  the END of ``~/.bashrc``, after its early return for non-interactive shells: an SSH session does
  not see RUNPOD_API_KEY. ``python`` (``/usr/local/bin``) is the interpreter with torch.
- the container's environment (PID 1 only): RUNPOD_POD_ID, a pod-scoped RUNPOD_API_KEY,
  RUNPOD_PUBLIC_IP, RUNPOD_TCP_PORT_22, PUBLIC_KEY (the request's, else the account's registered
  keys), the request's ``env``; plus RUNPOD_API_BASE_URL pointing at this emulator (on RunPod the
  default address is right).
- ``dockerArgs`` replaces the image's CMD (``/start.sh``); the volume is mounted at
  ``volumeMountPath`` (the SDK's default ``/runpod-volume``) and survives a stop; stop keeps the
  pod (and bills its volume), terminate removes it; a resumed pod gets a new SSH port.
- the API answers as RunPod's does: a bad key is HTTP 200 with a GraphQL ``Unauthorized`` error,
  no capacity and transient failures are GraphQL errors with RunPod's messages, a terminated pod
  is ``null``. A pod-scoped key may stop (and, unless ``pod_key_may_terminate`` is off, terminate)
  its own pod only.

Each pod sshd listens on its own loopback port (the pods share this machine's network): the port
is the pod's public port. What the orchestrator's own folders hold (``hide``) is invisible in a pod.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NO_CAPACITY = "There are no longer any instances available with the requested specifications. Please refresh and try again."
SOMETHING_WRONG = "Something went wrong. Please try again later or contact support."
KNOWN_GPUS = {"NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA A100 80GB PCIe"}
IMAGE_PYTHON_AT = "/opt/moola-image"
HTML_TITLES = {403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}  # where the image's Python tree is seen inside a pod

# RunPod's container-template/start.sh, without nginx and jupyter (and DSA keys, gone from OpenSSH)
START_SH = r"""#!/bin/bash
set -e
setup_ssh() {
    if [[ $PUBLIC_KEY ]]; then
        echo "Setting up SSH..."
        mkdir -p ~/.ssh
        echo "$PUBLIC_KEY" >> ~/.ssh/authorized_keys
        chmod 700 -R ~/.ssh
        for t in rsa ecdsa ed25519; do
            if [[ ! -f /etc/ssh/ssh_host_${t}_key ]]; then
                ssh-keygen -t $t -f /etc/ssh/ssh_host_${t}_key -q -N ''
            fi
        done
        /usr/sbin/sshd
    fi
}
export_env_vars() {
    echo "Exporting environment variables..."
    printenv | grep -E '^[A-Z_][A-Z0-9_]*=' | grep -v '^PUBLIC_KEY' | awk -F = '{ val = $0; sub(/^[^=]*=/, "", val); print "export " $1 "=\"" val "\"" }' > /etc/rp_environment
    if ! grep -q 'source /etc/rp_environment' ~/.bashrc; then
        echo 'source /etc/rp_environment' >> ~/.bashrc
    fi
}
echo "Pod Started"
setup_ssh
export_env_vars
echo "Start script(s) finished, Pod is ready to use."
sleep infinity
"""

# Ubuntu's /root/.bashrc opens with this: a non-interactive shell (an SSH exec session) stops here
BASHRC = """# ~/.bashrc: executed by bash(1) for non-login shells.
[ -z "$PS1" ] && return
"""

SSHD_CONFIG = """Include /etc/ssh/sshd_config.d/*.conf
Port {port}
ListenAddress 127.0.0.1
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
"""

# Runs as PID 1 of the pod's namespaces: the pod's root is an overlay of this machine's, then
# chroot into it and exec the pod's command (its environment is this process's).
CONTAINER = r"""set -e
R=$1; U=$2; W=$3; IMG=$4; VOL=$5; VOLAT=$6; KEEP=$7; shift 7
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=/,upperdir=$U,workdir=$W $R
mount --rbind /dev $R/dev
mount -t proc proc $R/proc
mount -t tmpfs tmpfs $R/run
mkdir -p $R/run/sshd
mount --bind $IMG $R/opt/moola-image
if [ -n "$VOL" ]; then mount --bind $VOL $R$VOLAT; fi
IFS=:; for k in $KEEP; do mkdir -p "$R$k"; mount --bind "$k" "$R$k"; done; unset IFS
exec chroot $R "$@"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _opaque(path: Path) -> None:
    """An empty directory in the pod, whatever this machine has there."""
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


@dataclass
class Pod:
    id: str
    name: str
    image: str
    gpu: str
    env: dict[str, str]
    docker_args: str
    volume_gb: int
    volume_mount_path: str
    container_disk_gb: int
    pod_key: str
    root: Path
    cost_per_hr: float = 3.99
    status: str = "RUNNING"
    port: int | None = None
    proc: subprocess.Popen | None = None
    starts: int = 0
    running_s: float = 0.0
    started: float | None = None
    created: float = field(default_factory=time.time)

    @property
    def disk(self) -> Path:
        return self.root / "disk"

    def path(self, inside: str) -> Path:
        """What the pod wrote at ``inside`` (its container disk, or its volume), seen from here (a
        terminated pod's disk is kept aside for tests to read)."""
        if self.volume_gb and (inside + "/").startswith(self.volume_mount_path.rstrip("/") + "/"):
            return self.root / "volume" / os.path.relpath(inside, self.volume_mount_path)
        disk = self.disk if self.disk.exists() else self.root / "disk.terminated"
        return disk / "upper" / inside.lstrip("/")

    def pids(self) -> list[int]:
        """Every process of the pod (PID 1 of its namespace and below), as this machine numbers them."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        from tests.fakes.sshd_server import descendants
        return descendants(self.proc.pid)


class RunPodEmulator:
    def __init__(self, root: Path, api_key: str = "rp_emulated_account_key", capacity=("NVIDIA H200",),
                 image: Path | None = None, hide: list[Path] = (), keep: list[Path] = (),
                 registered_keys: list[str] = (),
                 boot_polls: int = 0, pod_key_may_terminate: bool = True, pod_key: bool = True):
        self.root, self.api_key, self.capacity = Path(root), api_key, set(capacity)
        # a Python tree (make_image_python's root), seen in pods at IMAGE_PYTHON_AT; None: pods exist
        # in the API only, without a container (tests of requests and answers)
        self.image = image
        self.hide, self.registered_keys = [Path(h) for h in hide], list(registered_keys)
        # folders inside a hidden one that the image's files live in (the venv its site links into)
        self.keep = [Path(k) for k in keep]
        self.boot_polls, self.pod_key_may_terminate = boot_polls, pod_key_may_terminate
        self.pod_key = pod_key  # False: pods get no RUNPOD_API_KEY (a template that strips it, say)
        self.pods: dict[str, Pod] = {}
        self.gone: dict[str, Pod] = {}  # terminated: what they ran up, for the bill
        self.ops: list[str] = []
        self.times: list[float] = []
        self.by: list[str] = []  # whose key sent each op: "account", or the pod id whose pod-scoped key did
        self.queries: list[str] = []  # the raw GraphQL the SDK sent (with the account key)
        self.fail_next: list[str] = []  # messages the next mutations answer with (fault injection)
        self.fail_queries: list[str] = []  # messages the next pod status queries answer with
        self.html_next: list[int] = []  # HTTP statuses the next requests answer with, as an HTML page
        self.lose_creates = 0  # the next N creates are carried out, and their answer is lost (a 504 page)
        self.polls: dict[str, int] = {}
        self.lock = threading.RLock()
        self._n = 0
        self._who = "account"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.lose_creates and "podFindAndDeployOnDemand" in body["query"]:
                    with fake.lock:
                        got = fake.answer(body["query"], self.headers.get("Authorization", "").removeprefix("Bearer "))
                    if "data" not in got:  # refused (no capacity): that answer arrives
                        return self._send(json.dumps(got).encode())
                    fake.lose_creates -= 1
                    return self._page(504)  # the pod exists; its answer is lost on the way
                if fake.html_next:  # a proxy, a firewall or an outage answers instead of the API
                    return self._page(fake.html_next.pop(0))
                auth = self.headers.get("Authorization", "")
                with fake.lock:
                    out = json.dumps(fake.answer(body["query"], auth.removeprefix("Bearer "))).encode()
                self._send(out)

            def _page(self, code: int) -> None:
                page = f"<html><head><title>{code}</title></head><body><h1>{code} {HTML_TITLES.get(code, '')}" \
                       "</h1></body></html>".encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def _send(self, out: bytes) -> None:
                try:
                    self.send_response(200)  # RunPod answers 200 for GraphQL errors, a bad key included
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):  # a pod's watchdog ended with its pod
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- the bill, as RunPod's view of the account ------------------------------------------
    def running(self) -> list[str]:
        return [p.id for p in self.pods.values() if p.status == "RUNNING"]

    def billing(self) -> list[str]:
        """Pods that cost money now: running ones, and stopped ones that keep a volume."""
        return [p.id for p in self.pods.values() if p.status == "RUNNING" or p.volume_gb > 0]

    def op(self, text: str) -> None:
        self.ops.append(text)
        self.times.append(time.time())
        self.by.append(self._who)

    def when(self, text: str) -> float | None:
        hits = [t for o, t in zip(self.ops, self.times) if o == text]
        return hits[-1] if hits else None

    def close(self) -> None:
        for pod in list(self.pods.values()):
            self._kill(pod)
        self.server.shutdown()
        self.server.server_close()

    # -- containers ----------------------------------------------------------------------------
    def _image_layer(self, pod: Pod) -> None:
        """A fresh container disk: the image's files over this machine's root."""
        if pod.disk.exists():
            shutil.rmtree(pod.disk)
        up = pod.disk / "upper"
        (pod.disk / "work").mkdir(parents=True)
        for d in ("root/.ssh", "etc/ssh", "workspace", "opt/moola-image", *[str(h).lstrip("/") for h in self.hide]):
            _opaque(up / d)
        (up / "etc/ssh/sshd_config.d").mkdir()
        (up / "etc/ssh/sshd_config").write_text(SSHD_CONFIG.format(port=pod.port))
        (up / "root/.bashrc").write_text(BASHRC)
        (up / "start.sh").write_text(START_SH)
        (up / "start.sh").chmod(0o755)
        (up / "usr/local/bin").mkdir(parents=True)
        # a wrapper, not a symlink: Python finds its venv from the path it was started by
        (up / "usr/local/bin/python").write_text(f'#!/bin/sh\nexec {IMAGE_PYTHON_AT}/image/bin/python "$@"\n')
        (up / "usr/local/bin/python").chmod(0o755)
        if pod.volume_gb:
            (pod.root / "volume").mkdir(exist_ok=True)
            (up / pod.volume_mount_path.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def _start(self, pod: Pod) -> None:
        pod.port = free_port()  # a resumed pod's SSH port changes, as on RunPod
        pod.status, pod.started, pod.starts = "RUNNING", time.time(), pod.starts + 1
        self.polls[pod.id] = 0
        if self.image is None:  # an API-only emulation (tests of the SDK's requests): no container
            return
        self._image_layer(pod)
        mnt = pod.root / "mnt"
        mnt.mkdir(exist_ok=True)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "RUNPOD_POD_ID": pod.id, "RUNPOD_API_KEY": pod.pod_key, "RUNPOD_POD_HOSTNAME": f"{pod.id}-host",
               "RUNPOD_PUBLIC_IP": "127.0.0.1", "RUNPOD_TCP_PORT_22": str(pod.port), "RUNPOD_GPU_COUNT": "1",
               "RUNPOD_API_BASE_URL": self.url}
        if not self.pod_key:
            del env["RUNPOD_API_KEY"]
        if self.registered_keys:  # startSsh: the account's keys, unless the request sets PUBLIC_KEY
            env["PUBLIC_KEY"] = "\n".join(self.registered_keys)
        env.update(pod.env)
        cmd = shlex.split(pod.docker_args) if pod.docker_args else ["/start.sh"]
        vol = str(pod.root / "volume") if pod.volume_gb else ""
        pod.proc = subprocess.Popen(
            ["unshare", "-m", "-p", "-f", "--mount-proc", "--kill-child", "bash", "-c", CONTAINER, "container",
             str(mnt), str(pod.disk / "upper"), str(pod.disk / "work"), str(self.image),
             vol, pod.volume_mount_path, ":".join(map(str, self.keep)), *cmd],
            env=env, stdin=subprocess.DEVNULL, stdout=open(pod.root / "container.log", "ab"),
            stderr=subprocess.STDOUT, start_new_session=True)

    def _kill(self, pod: Pod) -> None:
        if pod.proc is not None and pod.proc.poll() is None:
            os.killpg(pod.proc.pid, signal.SIGKILL)  # PID 1 of the pod goes, and its namespace with it
            pod.proc.wait()
        if pod.started is not None:
            pod.running_s += time.time() - pod.started
            pod.started = None
        pod.proc = None

    def crash(self, pod_id: str) -> None:
        """The pod's machine dies (its processes are gone) and the API has not noticed: RUNNING."""
        self._kill(self.pods[pod_id])

    def stop(self, pod_id: str) -> None:
        pod = self.pods[pod_id]
        self._kill(pod)
        pod.status = "EXITED"
        shutil.rmtree(pod.disk, ignore_errors=True)  # the container disk is wiped; the volume stays

    def log(self, pod_id: str) -> str:
        pod = self.pods.get(pod_id) or self.gone[pod_id]
        return (pod.root / "container.log").read_text(errors="replace")

    # -- the GraphQL API -----------------------------------------------------------------------
    def answer(self, query: str, key: str) -> dict:
        def field(name, text=query):
            m = re.search(name + r':\s*"([^"]*)"', text)
            return m.group(1) if m else None

        def number(name):
            m = re.search(name + r":\s*(\d+)", query)
            return int(m.group(1)) if m else None

        pod_id = field("podId")
        scoped = next((p for p in self.pods.values() if p.pod_key == key), None)
        self._who = scoped.id if scoped else "account"
        if key != self.api_key and scoped is None:
            return {"errors": [{"message": "Unauthorized"}]}
        if scoped is not None:  # a pod's own key: stop, terminate (if allowed) and read its own pod only
            allowed = ("podStop", "query pod") + (("podTerminate",) if self.pod_key_may_terminate else ())
            if pod_id != scoped.id or not any(re.search(a.replace(" ", r"\s+"), query) for a in allowed):
                return {"errors": [{"message": "You do not have permission to perform this action."}]}
        else:
            self.queries.append(query)
        if "gpuTypes" in query:
            gpu = field("id")
            return {"data": {"gpuTypes": [{"id": gpu, "displayName": gpu}] if gpu in KNOWN_GPUS else []}}
        if self.fail_next and "mutation" in query:
            return {"errors": [{"message": self.fail_next.pop(0)}]}
        if "podFindAndDeployOnDemand" in query:
            gpu = field("gpuTypeId")
            self.op(f"create {gpu}")
            if gpu not in self.capacity:
                return {"errors": [{"message": NO_CAPACITY}]}
            env = dict(re.findall(r'\{ key: "([^"]*)", value: "([^"]*)" \}', query))
            self._n += 1
            pid = f"pod{self._n}"
            root = self.root / pid
            root.mkdir(parents=True)
            pod = Pod(pid, field("name") or "", field("imageName") or "", gpu, env, field("dockerArgs") or "",
                      number("volumeInGb") or 0, field("volumeMountPath") or "/runpod-volume",
                      number("containerDiskInGb") or 0, f"rp_pod_{pid}_{os.urandom(4).hex()}", root)
            self.pods[pid] = pod
            self._start(pod)
            return {"data": {"podFindAndDeployOnDemand": {"id": pid, "imageName": pod.image,
                                                          "env": [f"{k}={v}" for k, v in env.items()],
                                                          "machineId": "m1", "machine": {"podHostId": f"{pid}-host"}}}}
        if "myself" in query:
            return {"data": {"myself": {"pods": [self._pod(p) for p in self.pods.values()]}}}
        if "podResume" in query:
            self.op(f"resume {pod_id}")
            pod = self.pods.get(pod_id)
            if pod is None:
                return {"errors": [{"message": "pod not found"}]}
            if pod.status != "RUNNING":
                self._start(pod)
            return {"data": {"podResume": {"id": pod_id, "desiredStatus": "RUNNING", "costPerHr": pod.cost_per_hr}}}
        if "podStop" in query:
            self.op(f"stop {pod_id}")
            if pod_id not in self.pods:
                return {"errors": [{"message": "pod not found"}]}
            self.stop(pod_id)
            return {"data": {"podStop": {"id": pod_id, "desiredStatus": "EXITED"}}}
        if "podTerminate" in query:
            self.op(f"terminate {pod_id}")
            pod = self.pods.pop(pod_id, None)
            if pod is None:
                return {"errors": [{"message": "pod not found"}]}
            self._kill(pod)
            if pod.disk.exists():  # gone for good; kept aside for the tests' eyes only
                pod.disk.rename(pod.root / "disk.terminated")
            self.gone[pod_id] = pod
            return {"data": {"podTerminate": None}}
        if re.search(r"query\s+pod\b", query):
            if self.fail_queries and scoped is None:
                return {"errors": [{"message": self.fail_queries.pop(0)}]}
            pod = self.pods.get(pod_id)
            return {"data": {"pod": self._pod(pod) if pod else None}}
        return {"errors": [{"message": f"emulator: unexpected query {query[:80]!r}"}]}

    def _pod(self, pod: Pod) -> dict:
        runtime = None
        if pod.status == "RUNNING":
            self.polls[pod.id] = self.polls.get(pod.id, 0) + 1
            if self.polls[pod.id] > self.boot_polls:
                runtime = {"uptimeInSeconds": int(time.time() - (pod.started or time.time())), "ports": [
                    {"ip": "100.64.0.2", "isIpPublic": False, "privatePort": 22, "publicPort": 22, "type": "tcp"},
                    {"ip": "127.0.0.1", "isIpPublic": True, "privatePort": 22, "publicPort": pod.port, "type": "tcp"}]}
        return {"id": pod.id, "name": pod.name, "desiredStatus": pod.status, "costPerHr": pod.cost_per_hr,
                "imageName": pod.image, "env": [f"{k}={v}" for k, v in pod.env.items()], "machineId": "m1",
                "dockerArgs": pod.docker_args, "volumeInGb": pod.volume_gb, "volumeMountPath": pod.volume_mount_path,
                "containerDiskInGb": pod.container_disk_gb, "gpuCount": 1, "runtime": runtime,
                "machine": {"gpuDisplayName": pod.gpu}, "lastStatusChange": "", "uptimeSeconds": 0}

"""A local fake of RunPod's GraphQL HTTP API, for the real ``runpod`` SDK (RUNPOD_API_BASE_URL).

It answers the four operations moola uses (pod query, podFindAndDeployOnDemand, podResume,
podStop) plus the SDK's own gpuTypes check, in the response shapes the SDK parses.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakes.fake_runpod import NO_CAPACITY

KNOWN_GPUS = {"NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA A100 80GB PCIe"}


class FakeRunPodHTTP:
    def __init__(self, api_key="rp_test_key", capacity=("NVIDIA H200",), ssh_port=22022, boot_polls=1):
        self.api_key, self.capacity, self.ssh_port, self.boot_polls = api_key, set(capacity), ssh_port, boot_polls
        self.ssh_ports: list[int] = []  # several loopback pods: the n-th pod created gets the n-th (cycling)
        self.port_of: dict[str, int] = {}
        self.pods: dict[str, dict] = {}
        self.ops: list[str] = []
        self.times: list[float] = []  # time.time() of each op
        self.polls: dict[str, int] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self.send_response(401)
                    self.end_headers()
                    return
                with fake.lock:  # pods are created side by side (moola.pods.fleet)
                    out = json.dumps(fake.answer(body["query"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def op(self, text: str) -> None:
        self.ops.append(text)
        self.times.append(time.time())

    def when(self, text: str) -> float | None:
        """time.time() of the last op ``text``, or None."""
        hits = [t for o, t in zip(self.ops, self.times) if o == text]
        return hits[-1] if hits else None

    def answer(self, query: str) -> dict:
        def field(name):
            m = re.search(name + r':\s*"([^"]*)"', query)
            return m.group(1) if m else None
        if "gpuTypes" in query:
            gpu = field("id")
            return {"data": {"gpuTypes": [{"id": gpu, "displayName": gpu}] if gpu in KNOWN_GPUS else []}}
        if "podFindAndDeployOnDemand" in query:
            gpu = field("gpuTypeId")
            self.op(f"create {gpu}")
            if gpu not in self.capacity:
                return {"errors": [{"message": NO_CAPACITY}]}
            pod = {"id": f"pod{len(self.pods) + 1}", "desiredStatus": "RUNNING", "costPerHr": 3.99,
                   "imageName": field("imageName"), "machineId": "m1", "runtime": None}
            self.pods[pod["id"]] = pod
            self.port_of[pod["id"]] = (self.ssh_ports[(len(self.pods) - 1) % len(self.ssh_ports)] if self.ssh_ports
                                       else self.ssh_port)
            return {"data": {"podFindAndDeployOnDemand": pod}}
        pod_id = field("podId")
        if "podResume" in query:
            self.op(f"resume {pod_id}")
            self.pods[pod_id]["desiredStatus"] = "RUNNING"
            return {"data": {"podResume": {"id": pod_id, "desiredStatus": "RUNNING", "costPerHr": 3.99}}}
        if "podStop" in query:
            self.op(f"stop {pod_id}")
            self.pods[pod_id].update(desiredStatus="EXITED", runtime=None)
            return {"data": {"podStop": {"id": pod_id, "desiredStatus": "EXITED"}}}
        if re.search(r"query\s+pod\b", query):
            pod = self.pods.get(pod_id)
            if pod is not None and pod["desiredStatus"] == "RUNNING":
                self.polls[pod_id] = self.polls.get(pod_id, 0) + 1
                if self.polls[pod_id] > self.boot_polls:
                    pod["runtime"] = {"uptimeInSeconds": 5, "ports": [
                        {"ip": "100.64.0.2", "isIpPublic": False, "privatePort": 22, "publicPort": 22, "type": "tcp"},
                        {"ip": "127.0.0.1", "isIpPublic": True, "privatePort": 22,
                         "publicPort": self.port_of.get(pod_id, self.ssh_port),
                         "type": "tcp"}]}
            return {"data": {"pod": pod}}
        return {"errors": [{"message": f"fake: unexpected query {query[:80]!r}"}]}

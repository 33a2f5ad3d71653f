"""A fast in-process fake of the RunPod API's responses, for unit tests of the lifecycle logic.

What it leaves out (tests/fakes/runpod_emulator.py has it): HTTP and the SDK's parsing, GraphQL
errors as the real API words them, pods as containers (host keys, start command, watchdog)."""

from __future__ import annotations

import threading

from runpod import error as rp_error

from moola.pods.api import classify

NO_CAPACITY = "There are no longer any instances available with the requested specifications"


class FakeRunPod:
    """Answers like the runpod SDK: dicts shaped as its GraphQL responses, errors already classified."""

    def __init__(self, ssh_port=22022, capacity=("NVIDIA H200",), boot_polls=2, status="EXITED"):
        self.capacity, self.boot_polls, self.ssh_port = set(capacity), boot_polls, ssh_port
        self.pods: dict[str, dict] = {"existing": {"id": "existing", "desiredStatus": status, "costPerHr": 3.5,
                                                   "runtime": None}}
        self.calls: list[str] = []
        self.polls = 0
        self.lock = threading.Lock()  # a Fleet creates its pods side by side

    def _running(self, pod_id):
        self.polls += 1
        pod = self.pods[pod_id]
        if pod["desiredStatus"] == "RUNNING" and self.polls > self.boot_polls:
            pod["runtime"] = {"ports": [
                {"ip": "10.0.0.1", "isIpPublic": False, "privatePort": 22, "publicPort": 22, "type": "tcp"},
                {"ip": "127.0.0.1", "isIpPublic": True, "privatePort": 22, "publicPort": self.ssh_port, "type": "tcp"},
            ]}
        return pod

    def get_pod(self, pod_id):
        self.calls.append(f"get {pod_id}")
        return self._running(pod_id) if pod_id in self.pods else None

    def resume_pod(self, pod_id, gpu_count):
        self.calls.append(f"resume {pod_id}")
        self.pods[pod_id]["desiredStatus"] = "RUNNING"
        return self.pods[pod_id]

    def create_pod(self, name, image_name, gpu_type_id, cloud_type, gpu_count, volume_in_gb,
                   container_disk_in_gb, ports, env=None, docker_args=None, volume_mount_path=None):
        with self.lock:
            self.calls.append(f"create {gpu_type_id}")
            if gpu_type_id not in self.capacity:
                raise classify(rp_error.QueryError(NO_CAPACITY))
            pod = {"id": f"pod-{len(self.pods)}", "name": name, "desiredStatus": "RUNNING", "costPerHr": 3.99,
                   "runtime": None, "env": [f"{k}={v}" for k, v in (env or {}).items()], "volumeInGb": volume_in_gb}
            self.pods[pod["id"]] = pod
            return pod

    def get_pods(self):
        return [p for p in self.pods.values() if p["desiredStatus"] != "TERMINATED"]

    def terminate_pod(self, pod_id):
        self.calls.append(f"terminate {pod_id}")
        if pod_id not in self.pods or self.pods[pod_id]["desiredStatus"] == "TERMINATED":
            raise classify(rp_error.QueryError("pod not found"))
        self.pods[pod_id].update(desiredStatus="TERMINATED", runtime=None)

    def stop_pod(self, pod_id):
        self.calls.append(f"stop {pod_id}")
        self.pods[pod_id]["desiredStatus"] = "EXITED"
        return self.pods[pod_id]

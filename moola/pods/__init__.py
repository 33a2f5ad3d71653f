"""RunPod, the one pod lifecycle: the API and its error table (api), the pod's boot (boot), a lease
(lease), the worker's fleet (fleet), gates spread over pods (spread), the pod's pinned packages
(env, pod.lock), its watchdog (watchdog), listing and cleaning (listing), the runner for a kind
(runner)."""

#!/usr/bin/env bash
# Run once with a real RunPod account before trusting moola with pods (about 15 minutes, about $1):
# one pod created as the `runpod` worker creates it; checks its pinned host key, its watchdog (sees
# the pod's key, terminates the pod when heartbeats stop), torch on the pod, and that nothing is left
# listed or billing. Needs RUNPOD_API_KEY and MOOLA_SSH_KEY (environment or .env). Not part of
# `make test`. `bash bench/first_pod.sh --emulate` runs the same checks against the local emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s setup
exec .venv/bin/python bench/first_pod.py "$@"

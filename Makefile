# The two commands: `make demo` and `make test`. Each sets everything up when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU build of torch for dev and CI (a plain `torch` would pull a 5.5 GB CUDA build).
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test test-fast soak setup bench clean sshd ui-check

setup: $(STAMP)

# The gates' packages at the pins a pod gets (moola/pods/pod.lock), so here and there agree.
LOCK := moola/pods/pod.lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -c $(LOCK) -e ".[orchestrate,dev]"
	touch $(STAMP)

# The full gates flow (Prefect, gates in this process on the CPU) on the built-in sample data; prints the
# decision and the registry. Exits 0 whenever the pipeline reached a decision, whichever it is.
demo: $(STAMP)
	$(PY) -m moola.cli sample-data data/sample
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(PY) -m flows.gates --data data/sample/train.parquet \
	  --unlabeled data/sample/unlabeled.parquet --artifacts artifacts --runner here

# The ssh tests run a real OpenSSH sshd on a loopback port: install Debian's openssh-server
# when it is missing (needs root, as on CI; otherwise install it yourself).
sshd:
	@command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || { \
	  echo "installing openssh-server for the ssh tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null; }

# Two pytest-xdist workers: one takes the end-to-end flows (one group, one Prefect server, in order),
# the other the rest beside it. Each run is in a new order (pytest-randomly; its seed printed at the end).
test: $(STAMP) sshd
	$(VENV)/bin/ruff check --select F,E7,E9,I moola flows tests bench
	$(PY) -m pytest -q -n 2 --dist loadgroup

# Everything but the end-to-end flows (tests/flows/, marker e2e): for the edit-test loop.
test-fast: $(STAMP) sshd
	$(VENV)/bin/ruff check --select F,E7,E9,I moola flows tests bench
	$(PY) -m pytest -q -m "not e2e" -n 2

# Runs through the runpod worker with injected faults, then RunPod's view: nothing left running or
# billing (bench/faults.py; about 10 minutes; not part of `make test`).
soak: $(STAMP) sshd
	$(PY) bench/faults.py

bench: $(STAMP)
	$(PY) bench/validate.py

# The Prefect UI in headless Chromium (Debian's chromium; installed here when missing): run list,
# decision artifact and its forest plot, a gate artifact and its reliability diagram. Screenshots in docs/ui/.
# Not part of `make test`.
ui-check: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(PY) bench/ui.py

clean:
	rm -rf artifacts data .pytest_cache

# The two commands: `make demo` and `make test`. Each sets everything up when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU build of torch for dev and CI (a plain `torch` would pull a 5.5 GB CUDA build).
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[orchestrate,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m moola.cli sample-data data/sample
	$(PY) -m moola.cli validate data/sample/train.parquet --unlabeled data/sample/unlabeled.parquet --out artifacts/demo/gate0

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/validate.py

clean:
	rm -rf artifacts data .pytest_cache

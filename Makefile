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

DEMO := artifacts/demo
GATE := $(PY) -m moola.cli gate run --data data/sample/train.parquet --unlabeled data/sample/unlabeled.parquet

# Gates 0-5 on the sample data with the local CPU. A gate that fails its criteria (exit 3)
# is a verdict, not a crash: the demo reports it and goes on; invalid data (2) or a crash (1) stop it.
demo: $(STAMP)
	$(PY) -m moola.cli sample-data data/sample
	$(GATE) validate --out $(DEMO)/validate
	@for g in baseline minirocket pretrain transfer augment; do \
	  extra=""; \
	  case $$g in minirocket|augment) extra="--baseline $(DEMO)/baseline";; \
	    transfer) extra="--baseline $(DEMO)/baseline --encoder $(DEMO)/pretrain";; esac; \
	  $(GATE) $$g --out $(DEMO)/$$g $$extra 2>$(DEMO)/$$g.log; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 3 ]; then cat $(DEMO)/$$g.log; exit $$rc; fi; \
	done
	@echo "gate folders (result.json, model files, predictions, MANIFEST.sha256) are in $(DEMO)/"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/validate.py

clean:
	rm -rf artifacts data .pytest_cache

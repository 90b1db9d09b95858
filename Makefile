# TARS Observability — developer entry points. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= tars.yaml
OUT    ?= test_output
PORT   ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/.tars/dagster_home

.PHONY: install bytecode demo test test-fast lint format dev validate clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) bytecode

# The package is installed editable, so pip compiles none of it; where PYTHONDONTWRITEBYTECODE
# is set (as on many CI machines and in containers) every tars-* command and every Dagster run
# worker would compile it again from source (about 0.6 s of each process). compileall writes the
# .pyc files whatever that setting says and skips the ones that are up to date.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 tars_pipeline

# Copied once: later local edits (e.g. Postgres storage) are kept.
$(DAGSTER_HOME)/dagster.yaml: | tars_pipeline/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp tars_pipeline/dagster.yaml $@

## demo: run the whole bundled week through the seed's commands into $(OUT)/
demo: $(STAMP) bytecode $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/tars-ga-kpi --config $(CONFIG) --output-dir $(OUT)
	@for day in 1 2 3 4 5 6 7; do \
	  $(BIN)/tars-stability-monitor --config $(CONFIG) --day-number $$day --output-dir $(OUT) || exit $$?; \
	done
	$(BIN)/tars-anomaly-detector --config $(CONFIG) --z-threshold 3.0 --output-dir $(OUT)
	$(BIN)/tars-regression-analyzer --config $(CONFIG) --output-dir $(OUT)
	$(BIN)/tars-retro --auto --config $(CONFIG) --output-dir $(OUT)
	@echo
	@echo "Retrospective: $(OUT)/GA_7DAY_RETROSPECTIVE.md"
	@echo "HTML report:   $(OUT)/GA_7DAY_RETROSPECTIVE.html (open it in a browser)"

## test: the whole suite (real Dagster instance, real DuckDB files), one worker per core
test: $(STAMP) bytecode
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25

## test-fast: the pure core (the judge, the reports' formatting, config) in seconds
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" tars_pipeline_tests/judge tars_pipeline_tests/test_config.py

## bench: speed and memory at scale (W-large, 4x and 16x weeks; the detector's bound), ~13 min
bench: $(STAMP) bytecode
	$(BIN)/python benchmarks/detector_bound.py --repeat 2
	$(BIN)/python benchmarks/scale.py --scales 1,4,16 --skip-cli-above 1

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: $(STAMP)
	TARS_CONFIG=$(CONFIG) $(BIN)/dagster definitions validate -w workspace.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) TARS_CONFIG=$(CONFIG) $(BIN)/dg check defs

## dev: the Dagster UI on http://127.0.0.1:$(PORT) (make dev PORT=3001) with a persistent instance.
## The webserver and daemon log at LOG_LEVEL: warning by default, so the daemon does not print
## every sensor tick (two lines a minute); make dev LOG_LEVEL=info shows them. Dagster has no
## instance setting for this (dagster.yaml): it is dg dev's --log-level.
LOG_LEVEL ?= warning
dev: $(STAMP) bytecode $(DAGSTER_HOME)/dagster.yaml
	@echo "Dagster UI on http://127.0.0.1:$(PORT) (DAGSTER_HOME=$(DAGSTER_HOME), log level $(LOG_LEVEL))"
	VIRTUAL_ENV=$(CURDIR)/$(VENV) TARS_CONFIG=$(CONFIG) $(BIN)/dg dev -h 127.0.0.1 -p $(PORT) --log-level $(LOG_LEVEL)

clean:
	rm -rf .tars $(OUT)

# Medic — the two commands that work on a fresh machine (each bootstraps .venv/ idempotently):
#   make demo   run `medic simulate` over scenarios/ with approval given, on the embedded AWS world, then backtest each
#               world (`medic backtest`: one line under the summary)
#   make test   ruff, mypy, the SAM template check, and the whole pytest suite
#   make test-fast  the unit and property tests only (no embedded AWS server), while editing
#   make bench  the benchmarks (bench/README.md) in their own bench/.venv → bench/results.md; never part of `test`
#               BENCH_QUICK=1 for a smoke run (minutes), BENCH_ONLY="storm decisions" for some sections only
#   make lock   shared/requirements.in → shared/requirements.lock, the pins both the layer and .venv install
#               (UPGRADE=1 moves every pin to the newest its range allows; without it, pins that still fit stay)
.PHONY: demo test test-fast lint typecheck template pytest bench lock clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
#: The layer's requirements pinned, with hashes: shared/Makefile builds the layer from it, and .venv gets the same.
LOCK := shared/requirements.lock

# The runtime's requirements come from the lock, hash-checked, so the tests run on the versions the layer ships; then
# medic and its developer tools, held to the lock's pins. pip takes any hash in a constraints file as a demand to
# hash everything, which an editable install cannot meet: the constraints are the lock without its hashes.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	sed -e '/^ *--hash=/d' -e 's/ *\\$$//' $(LOCK) > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c $(VENV)/constraints.txt
	touch $(STAMP)

# The lock: shared/requirements.in resolved by uv (pinned here, in a venv of its own inside .venv/) for Python 3.11
# and later on every platform, so one file serves the layer (python3.13, Linux arm64 wheels) and .venv (3.11+,
# any OS), with the hashes of every file PyPI has for each pin. The pins must also suit the developer tools, which
# share .venv (aws-sam-translator holds pydantic to one minor series): the whole [dev] resolution constrains them.
# uv keeps the pins of the file it writes where they still fit, so the lock is copied there first.
LOCK_VENV := $(VENV)/lock
UV := uv==0.13.8
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 $(if $(UPGRADE),--upgrade)

lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet '$(UV)'
	test ! -f $(LOCK) || cp $(LOCK) $(LOCK_VENV)/dev-tools.txt
	$(UV_COMPILE) pyproject.toml --extra dev -o $(LOCK_VENV)/dev-tools.txt
	$(UV_COMPILE) --generate-hashes --custom-compile-command 'make lock' shared/requirements.in \
		-c $(LOCK_VENV)/dev-tools.txt -o $(LOCK)

# The fixed-floor story runs last, so the demo ends on it: PC raised in the world, plan VERIFIED.
DEMO_LAST := scenarios/spillover-fixed-floor.yaml
DEMO_SCENARIOS := $(filter-out $(DEMO_LAST),$(sort $(wildcard scenarios/*.yaml))) $(DEMO_LAST)

demo: $(STAMP)
	$(BIN)/medic simulate $(DEMO_SCENARIOS) --decide approve --check --backtest

test: lint typecheck template pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Both templates: SAM translation + cfn-lint, then checkov on the result (scripts/checkov-requirements.txt says why
# it gets a venv of its own, inside .venv/ so that `clean` and the linters' excludes cover it).
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): scripts/checkov-requirements.txt | $(STAMP)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r scripts/checkov-requirements.txt
	touch $(CHECKOV_STAMP)

template: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python scripts/check_template.py template.yaml templates/member-account.yaml --checkov $(CHECKOV_VENV)/bin/checkov

# One worker per core, and one more: each worker runs the embedded AWS (moto's server) in a thread of its own process,
# so the test and the server take turns on one GIL and a worker leaves its core idle for part of the time. On two cores
# three workers took 244 s, two 261 s, four 267 s (more processes to start and import into). A module's tests stay on
# one worker (loadscope): they share its fixtures.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(1 + (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))')

pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadscope

test-fast: $(STAMP)
	$(BIN)/pytest -q -n auto tests/unit tests/property

# The benchmarks get a venv of their own: c7n (the side-by-side) pins boto3 exactly, which .venv must not get.
BENCH_VENV := bench/.venv
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e '.[world]' -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_BIN)/python bench/run_all.py $(BENCH_ONLY)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .aws-sam

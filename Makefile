# Medic — the two commands that work on a fresh machine (each bootstraps .venv/ idempotently):
#   make demo   run `medic simulate` over scenarios/ with approval given, on the embedded AWS world
#   make test   ruff, mypy, the SAM template check, and the whole pytest suite
.PHONY: demo test lint typecheck template pytest clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The fixed-floor story runs last, so the demo ends on it: PC raised in the world, plan VERIFIED.
DEMO_LAST := scenarios/spillover-fixed-floor.yaml
DEMO_SCENARIOS := $(filter-out $(DEMO_LAST),$(sort $(wildcard scenarios/*.yaml))) $(DEMO_LAST)

demo: $(STAMP)
	$(BIN)/medic simulate $(DEMO_SCENARIOS) --decide approve --check

test: lint typecheck template pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

template: $(STAMP)
	$(BIN)/python scripts/check_template.py template.yaml

pytest: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .aws-sam

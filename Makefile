# Every target that needs Python creates .venv and installs the project on first use,
# and reinstalls when pyproject.toml changes.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= python3

.PHONY: test lint format demo bench bench-quick clean docs
BENCH_STAMP := $(VENV)/.installed-bench

LAB_STAMP := $(VENV)/.installed-lab

# The framework alone (make demo); the test suite adds the dev and docs tools.
$(LAB_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e ".[lab]"
	touch $(LAB_STAMP)

$(STAMP): $(LAB_STAMP)
	$(PY) -m pip install -q -e ".[lab,dev,docs]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15 --doctest-modules --ignore=vbounds/lab vbounds tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: $(LAB_STAMP)
	$(PY) -m experiments.main --config=experiments/configs/default.py --workdir=workdirs/demo

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[lab,dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks.run

bench-quick: $(BENCH_STAMP)
	$(PY) -m benchmarks.run --quick

# The documentation site (docs/), executing every tutorial; warnings are errors.
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) workdirs

# One command each. `make test` and `make demo` install first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: install demo test test-postgres lint bench simulate clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres,dev]'
	# an editable install leaves riskreg uncompiled; compile once, as a wheel install would
	$(BIN)/python -m compileall -q riskreg templates > /dev/null
	touch $(STAMP)

demo: install
	cd pilots && PATH="$(CURDIR)/$(BIN):$$PATH" sh demo.sh

# Every test, in parallel (pytest-xdist, one worker per core, one PostgreSQL cluster shared
# by the workers; tests go to whichever worker is free). A quicker local run
# without the slow tests (browsers, packaging, load, kills, long files):
# `make test TEST_MARK="not slow"` or `make test PYTEST_ARGS='-m "not slow"'`. Plain
# `pytest` stays serial, for debugging.
TEST_MARK ?=
test: install
	$(BIN)/python -m pytest -n auto -m "$(TEST_MARK)" $(PYTEST_ARGS)

test-postgres: install
	$(BIN)/python -m pytest -m postgres

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	# edited modules would otherwise be compiled afresh in every timed process
	$(BIN)/python -m compileall -q riskreg templates > /dev/null
	$(BIN)/python bench/run.py

simulate: install
	$(BIN)/python bench/simulate.py

clean:
	rm -rf $(VENV) build dist *.egg-info pilots/riskreg.db* pilots/riskreg.toml

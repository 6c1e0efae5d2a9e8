# Two commands on a fresh machine:
#   make run   - set up, then run the main job on the embedded default store
#   make test  - set up, then run the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run quickstart ui test test-fast lint format bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The oracle of tests/parity: the real wandb, in a virtualenv of its own (tests/parity/.venv-wandb,
# gitignored, kept between runs like benchmarks/.venv-peers; remade only when
# tests/parity/requirements.txt changes). Fails when it cannot be installed, so CI never skips it.
parity-venv: setup
	$(PY) -m tests.parity.venv

run: setup
	$(PY) examples/run_pipeline.py

# Both UIs, loopback only, in one command (Ctrl-C stops both): Dagster's on the instance
# `make run` records into (http://127.0.0.1:3000), and the artifact browser on the same store
# (http://127.0.0.1:3001), whose run pages link to the Dagster UI's.
UI_PORT ?= 3000
BROWSER_PORT ?= 3001
ui: setup
	mkdir -p .dagster_home
	@echo "Dagster UI:       http://127.0.0.1:$(UI_PORT)"
	@echo "Artifact browser: http://127.0.0.1:$(BROWSER_PORT)"
	DAGSTER_ARTIFACTS_DAGSTER_URL=http://127.0.0.1:$(UI_PORT) \
	  $(VENV)/bin/dagster-artifacts ui --host 127.0.0.1 --port $(BROWSER_PORT) & browser=$$!; \
	trap 'kill $$browser 2>/dev/null' EXIT INT TERM; \
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

quickstart: setup
	$(PY) examples/quickstart.py

test: setup parity-venv
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# While working: everything but the slow and the service-backed tests (CI runs `make test`).
test-fast: setup
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow and not services" $(PYTEST_ARGS)

# The house rules: ruff (with SLF001, no private names across modules), the import contracts of
# pyproject.toml (layers, no cycles, core never imports dagster) and mypy on the package.
lint: setup
	$(PY) -m ruff check dagster_artifacts tests benchmarks examples
	$(PY) -m ruff format --check dagster_artifacts tests benchmarks examples
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

format: setup
	$(PY) -m ruff format dagster_artifacts tests benchmarks examples
	$(PY) -m ruff check --fix dagster_artifacts tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache artifacts test-output tests/parity/.venv-wandb

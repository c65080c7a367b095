# Two commands: `make run` (demo gateway on SQLite) and `make test` (lint, types, tests).
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8080
# The tests run on PostgreSQL too when it answers on the default port with a database
# `test` (as on CI); set KETENPOORT_TEST_POSTGRES_URL= (empty) to run SQLite only.
ifeq ($(origin KETENPOORT_TEST_POSTGRES_URL), undefined)
KETENPOORT_TEST_POSTGRES_URL := $(shell psql -h 127.0.0.1 -U postgres -d test -tAc 'SELECT 1' >/dev/null 2>&1 && echo postgresql+psycopg://postgres@127.0.0.1:5432/test)
endif
export KETENPOORT_TEST_POSTGRES_URL
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed

.PHONY: run serve init test lint typecheck pytest browser bench clean install install-dev vendor \
	translations screenshots fuzz lock audit-deps soak wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP) $(NODE_STAMP)

## make run [PORT=8080] [HOST=127.0.0.1]: set up, build a demo instance with partners,
## people and signals under var/demo (SQLite) and serve it until Ctrl-C or SIGTERM.
run: $(STAMP)
	$(BIN)/ketenpoort demo --host $(HOST) --port $(PORT)

## make serve: initialise and serve the configured instance (no demo data).
serve: $(STAMP)
	$(BIN)/ketenpoort init
	$(BIN)/ketenpoort serve --host $(HOST) --port $(PORT)

## make test: ruff, import layers (lint-imports), mypy and the test suite on SQLite and
## (when it answers, see above) PostgreSQL; skipped PostgreSQL runs are counted and named.
test: install-dev lint typecheck audit-deps pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/lint-imports --no-logo
	$(BIN)/bandit -q -r gateway -lll

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

## The suite runs on every core (pytest-xdist; a module's tests stay on one worker, so a
## module's live gateway starts once); PYTEST_ARGS="-n 0" runs it in one process.
PYTEST_ARGS ?= -n auto --dist loadfile
pytest: $(DEV_STAMP) $(NODE_STAMP) browser
	$(BIN)/python -m pytest -m "not isolated" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m isolated

## The browser tests drive Debian's Chromium (Playwright's own download cannot be
## reached); installed here when missing and we may (root), else those tests say why
## they were skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium) || \
	  echo "could not install chromium: the browser tests will be skipped"; }

## make vendor: copy the NL Design System component CSS (EUPL-1.2) and its licence from
## node_modules into the package; the theme (our own design tokens) is web/static/theme.css.
VENDOR := gateway/web/static/vendor/utrecht
vendor: $(NODE_STAMP)
	mkdir -p $(VENDOR)
	cp node_modules/@utrecht/component-library-css/dist/index.css $(VENDOR)/component-library.css
	cp node_modules/@utrecht/component-library-css/LICENSE.md $(VENDOR)/LICENSE.md
	node -e 'const p=require("@utrecht/component-library-css/package.json");console.log(p.name+"@"+p.version+" "+p.license)' > $(VENDOR)/VERSION

## make translations: extract the strings, update the catalogues and compile the .mo files
## (committed, so a plain `pip install` ships them).
TRANSLATIONS := gateway/web/translations
translations: $(DEV_STAMP)
	$(BIN)/pybabel extract -F gateway/web/babel.cfg -k _l -o $(TRANSLATIONS)/messages.pot gateway/web
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching
	$(BIN)/pybabel compile -d $(TRANSLATIONS)

## make fuzz [FUZZ_EXAMPLES=200]: the contract fuzzing of tests/contract/test_fuzz.py
## (schemathesis against /v1/openapi.json) and the stateful create -> get -> withdraw
## sequences of tests/contract/test_stateful.py, longer and randomised, with shrinking.
FUZZ_EXAMPLES ?= 200
fuzz: $(DEV_STAMP)
	KETENPOORT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:logging \
	  tests/contract/test_fuzz.py tests/contract/test_stateful.py

## make screenshots: PNGs of the web pages in docs/screenshots/ (Debian's chromium).
screenshots: $(DEV_STAMP)
	$(BIN)/python -m tests.web.screenshots docs/screenshots

## make lock: pin every runtime and dev dependency, with hashes, from PyPI (pip-tools):
## requirements.lock (the Dockerfile installs it), requirements-dev.lock and the build
## backend's requirements-build.lock. Run it after
## changing pyproject.toml's dependencies and commit both files.
LOCK_OPTIONS := --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url \
	--no-emit-find-links
lock: $(DEV_STAMP)
	PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile $(LOCK_OPTIONS) --upgrade \
	  --output-file requirements.lock pyproject.toml
	PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile $(LOCK_OPTIONS) --upgrade --extra dev \
	  --output-file requirements-dev.lock pyproject.toml
	PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile $(LOCK_OPTIONS) --upgrade \
	  --output-file requirements-build.lock requirements-build.in

## make audit-deps: known vulnerabilities (PyPI's advisory data, per pinned version) in
## requirements.lock and requirements-dev.lock; a finding fails. When PyPI's per-version
## data cannot be reached, it says so plainly and does not fail: CI without that network
## must not go red on it (nor pass it off as audited).
PYPI_PROBE := https://pypi.org/pypi/pip/24.0/json
audit-deps: $(DEV_STAMP)
	@if $(BIN)/python -c "import urllib.request as u; u.urlopen('$(PYPI_PROBE)', timeout=10)" \
	    >/dev/null 2>&1; then \
	  $(BIN)/pip-audit --progress-spinner off --disable-pip --require-hashes --strict \
	    -r requirements.lock -r requirements-dev.lock; \
	else \
	  echo "audit-deps: NOT AUDITED - PyPI's per-version vulnerability data ($(PYPI_PROBE))" \
	    "cannot be reached from here; run 'make audit-deps' where it can"; \
	fi

## make wheel: the wheel the Dockerfile builds, in dist/ (same source, same build backend).
wheel: $(DEV_STAMP)
	rm -rf dist && $(BIN)/python -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

## make soak [SOAK_MINUTES=30]: mixed partner traffic against a live gateway, RSS and
## latency percentiles per minute (bench/soak.py; knobs in its docstring).
SOAK_MINUTES ?= 30
soak: $(DEV_STAMP)
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python bench/soak.py

bench: $(DEV_STAMP)
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

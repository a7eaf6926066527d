# Two commands on a fresh clone:
#   make run    serve the sample tool on http://127.0.0.1:5000 against the development wiki
#   make test   lint, type-check and run the whole test suite (real Redis, dev wiki, Chromium)
# Both set themselves up: a virtualenv in .venv, and (as root on Debian) redis-server and chromium.

VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000

.PHONY: run test lint typecheck pytest bench bench-smoke system-deps clean docs

$(VENV)/.installed: pyproject.toml requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e '.[tool,dev]'
	touch $@

system-deps:
	@sh scripts/system-deps.sh

run: $(VENV)/.installed
	$(VENV)/bin/flask --app app run --debug --port $(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed system-deps
	$(VENV)/bin/pytest -q -ra $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.installed system-deps
	$(PY) -m bench

bench-smoke: $(VENV)/.installed system-deps
	$(PY) -m bench --smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/artifacts

# The documentation site (MkDocs + Material + mkdocstrings), built with --strict: a broken
# link, a missing page or an unresolvable API reference fails it. Output in site/.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean --site-dir site

# Two commands on a fresh clone:
#   make run    serve the sample tool on http://127.0.0.1:5000 against the development wiki
#   make test   lint, type-check and run the whole test suite (real Redis, dev wiki, Chromium)
# and an optional third for contributors (docs/contributing.md):
#   make test-mediawiki   the conformance suite against the dev wiki and a real MediaWiki 1.39
# And for hunting: `make fuzz` (property tests with many random examples, not derandomised) and
# `make audit` (pip-audit over requirements.txt; says so when the advisory database is out of reach).
# Both set themselves up: a virtualenv in .venv, and (as root on Debian) redis-server and chromium.

VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000

.PHONY: run test test-mediawiki lint typecheck pytest fuzz audit bench bench-smoke system-deps clean docs

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
	$(PY) scripts/check_imports.py flask_wikimedia

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed system-deps
	$(VENV)/bin/pytest -q -ra $(PYTEST_ARGS)

test: lint typecheck pytest

# Long and random (the normal run is derandomised, see tests/conftest.py): FUZZ_EXAMPLES=n to
# change how many examples each property test draws.
fuzz: $(VENV)/.installed system-deps
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q -ra $$(grep -rlE '@given' tests) $(PYTEST_ARGS)

audit: $(VENV)/.installed
	$(PY) scripts/audit.py requirements.txt
# Optional: the conformance scenarios against the development wiki AND a real MediaWiki 1.39 +
# Extension:OAuth (scripts/real-mediawiki; the extension tarball from ../shared/mediawiki/ or
# $REAL_MEDIAWIKI_TARBALL). Fails, never skips, when the real wiki cannot be set up.
test-mediawiki: $(VENV)/.installed system-deps
	CONFORMANCE_SERVERS=devwiki,real_wiki $(VENV)/bin/pytest -q -ra tests/conformance $(PYTEST_ARGS)

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

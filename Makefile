# Quickstart targets. Each creates .venv on first use and installs what it needs there; torch is
# installed first so that pip takes the CPU wheel (an unpinned torch resolves to a multi-GB CUDA build).
#   make demo        a piece per composer from the bundled model (core + audio + notation extras)
#   make test        the test suite (the test extra: everything)
#   make lint        ruff, with the rules of pyproject.toml
#   make docs        the documentation site into site/ (mkdocs build --strict); make docs-serve serves it
PYTHON ?= python3.11
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTEST_ARGS ?=
# mkdocs-material prints a banner about its successor on every build
export NO_MKDOCS_2_WARNING := 1
DEMO_EXTRAS := audio,notation

.PHONY: demo test lint docs docs-serve install install-test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# One stamp per set of extras: `make demo` does not install the test extra, `make test` adds it.
$(VENV)/.installed-%: $(VENV)/bin/python setup.cfg pyproject.toml
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[$*]"
	touch $@

install: $(VENV)/.installed-$(DEMO_EXTRAS)
install-test: $(VENV)/.installed-test

demo: install
	$(VENV)/bin/g2m-demo --output-dir demo_output

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .

docs: $(VENV)/.installed-docs
	$(VENV)/bin/mkdocs build --strict

docs-serve: $(VENV)/.installed-docs
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) demo_output site
